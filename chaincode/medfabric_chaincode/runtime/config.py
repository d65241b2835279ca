"""Server configuration from the environment; command-line flags take precedence over it.

TLS is on unless CHAINCODE_TLS_DISABLED=true: a missing key or certificate is
an error, never a silent fall back to plaintext.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ConfigError

ENV_ADDRESS = "CHAINCODE_SERVER_ADDRESS"
ENV_IDS = ("CHAINCODE_ID", "CORE_CHAINCODE_ID_NAME")
ENV_TLS_DISABLED = "CHAINCODE_TLS_DISABLED"
ENV_TLS_KEY = "CHAINCODE_TLS_KEY"
ENV_TLS_CERT = "CHAINCODE_TLS_CERT"
ENV_CLIENT_CA = "CHAINCODE_CLIENT_CA_CERT"
ENV_LOG_LEVEL = "CORE_CHAINCODE_LOGLEVEL"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


@dataclass(frozen=True)
class TlsConfig:
    """PEM key and certificate of the server; with `client_ca` set, clients must present a certificate it signed."""

    key: bytes
    cert: bytes
    client_ca: bytes | None = None


@dataclass(frozen=True)
class ServerConfig:
    address: str
    chaincode_id: str
    tls: TlsConfig | None
    log_level: str = "WARNING"


def load_server_config(
    env: Mapping[str, str],
    *,
    address: str | None = None,
    chaincode_id: str | None = None,
    tls_disabled: bool | None = None,
    tls_key: str | None = None,
    tls_cert: str | None = None,
    client_ca: str | None = None,
    log_level: str | None = None,
) -> ServerConfig:
    """The configuration from flags (when not None) over environment variables; ConfigError says what is wrong."""
    address = address or env.get(ENV_ADDRESS, "")
    if not address:
        raise ConfigError(f"no server address: use --address or {ENV_ADDRESS}")
    _check_address(address)
    chaincode_id = chaincode_id or next((env[name] for name in ENV_IDS if env.get(name)), "")
    if not chaincode_id:
        raise ConfigError(f"no chaincode package id: use --id or {' or '.join(ENV_IDS)}")
    if tls_disabled is None:
        tls_disabled = _parse_bool(env.get(ENV_TLS_DISABLED, ""), ENV_TLS_DISABLED)
    tls = None
    if not tls_disabled:
        ca_path = client_ca or env.get(ENV_CLIENT_CA)
        tls = TlsConfig(
            key=_read_pem(tls_key or env.get(ENV_TLS_KEY), "TLS key", "--tls-key", ENV_TLS_KEY),
            cert=_read_pem(tls_cert or env.get(ENV_TLS_CERT), "TLS certificate", "--tls-cert", ENV_TLS_CERT),
            client_ca=_read_pem(ca_path, "client CA certificate", "--client-ca", ENV_CLIENT_CA) if ca_path else None,
        )
    level = (log_level or env.get(ENV_LOG_LEVEL) or "WARNING").upper()
    level = "WARNING" if level == "WARN" else level
    if level not in LOG_LEVELS:
        raise ConfigError(f"unknown log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
    return ServerConfig(address=address, chaincode_id=chaincode_id, tls=tls, log_level=level)


def _check_address(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"invalid server address {address!r}: expected host:port")


def _parse_bool(value: str, name: str) -> bool:
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _read_pem(path: str | None, what: str, flag: str, env_name: str) -> bytes:
    if not path:
        raise ConfigError(f"TLS is on but no {what} is set: use {flag} or {env_name}, or {ENV_TLS_DISABLED}=true")
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"the {what} {path} is not PEM")
    return data
