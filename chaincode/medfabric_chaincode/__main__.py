"""`medfabric-chaincode`: serve the MedFabric contracts to the peers (chaincode as a service).

Flags take precedence over environment variables; see chaincode/README.md.
Configuration errors print one line and exit with 2; SIGTERM or SIGINT stop
the server gracefully and exit with 0.
"""

from __future__ import annotations

import os

# gRPC's core writes lines of its own to stderr (a failed bind, a failed TLS handshake) once
# gRPC is imported; keep them out by default, GRPC_VERBOSITY=error or debug brings them back.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from . import __version__  # noqa: E402
from .contracts import ALL_CONTRACTS  # noqa: E402
from .contracts.common import DomainBindingError, domain_msps  # noqa: E402
from .runtime import ChaincodeServer, ConfigError, ContractRouter, load_server_config  # noqa: E402

STOP_GRACE_SECONDS = 5.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage and error
        self.exit(2, f"{self.prog}: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the chaincode server until SIGTERM or SIGINT; the exit status."""
    parser = _Parser(prog="medfabric-chaincode", description="Serve the MedFabric chaincode to Fabric peers.")
    parser.add_argument("--address", help="host:port to listen on [CHAINCODE_SERVER_ADDRESS]")
    parser.add_argument("--id", dest="chaincode_id", help="chaincode package id [CHAINCODE_ID, CORE_CHAINCODE_ID_NAME]")
    parser.add_argument("--tls-disabled", action="store_true", default=None, help="plaintext [CHAINCODE_TLS_DISABLED]")
    parser.add_argument("--tls-key", help="server TLS key, PEM file [CHAINCODE_TLS_KEY]")
    parser.add_argument("--tls-cert", help="server TLS certificate, PEM file [CHAINCODE_TLS_CERT]")
    parser.add_argument("--client-ca", help="CA of peer client certificates: mutual TLS [CHAINCODE_CLIENT_CA_CERT]")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (default), ERROR [CORE_CHAINCODE_LOGLEVEL]")
    options = vars(parser.parse_args(argv))
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        config = load_server_config(os.environ, **options)
        domain_msps()  # refuse to serve without the binding every domain check relies on
        _configure_logging(config.log_level)
        server = ChaincodeServer(config, ContractRouter(ALL_CONTRACTS, title="medfabric", version=__version__))
        server.start()
    except (ConfigError, DomainBindingError) as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    stopping.wait()
    server.stop(STOP_GRACE_SECONDS)
    return 0


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger(__package__)
    package_logger.addHandler(handler)
    package_logger.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
