"""`python -m medfabric_ops setup|render|up|down|status|logs|clean`: the `network` commands on their own."""

from .cli import network

if __name__ == "__main__":
    network(prog_name="python -m medfabric_ops")
