"""`python -m medfabric.data_service`: serve one domain's sealed EMR payloads."""

from medfabric.data_service.server import main

if __name__ == "__main__":
    main()
