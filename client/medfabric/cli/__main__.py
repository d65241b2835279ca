"""`python -m medfabric.cli`: the `medfabric` command."""

from medfabric.cli.main import main

if __name__ == "__main__":
    main()
