"""Calls to a domain's data service (medfabric.data_service) over HTTPS, each answer a JSON object or a one-line
error. The TLS context trusts the served domain's TLS CA and presents the caller's own TLS certificate
(medfabric.data_service.transport.client_context): the service takes no one else.

    >>> service = DataServiceClient("hospital-a", "https://127.0.0.1:7900", client_context(ca_pem, tls_files))
    >>> service.identity()["msp_id"]
    'HospitalAMSP'
    >>> service.fetch("rec-1", signed_fetch_statement)["blob"]
"""

from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import urlsplit

from medfabric.errors import MedfabricError
from medfabric.http_json import exchange

TIMEOUT_S = 30


class DataServiceError(MedfabricError):
    """A data service refused a request (`status`, its HTTP status) or could not be reached (`status` None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class DataServiceClient:
    """The data service of one domain at `base_url` (https://host:port), reached with the TLS context `tls`."""

    def __init__(self, domain_id: str, base_url: str, tls: ssl.SSLContext, timeout_s: float = TIMEOUT_S):
        self.domain_id = domain_id
        self.base_url = base_url
        self._tls = tls
        self._timeout_s = timeout_s
        self._identity: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        """{msp_id, certificate_pem, key_id}: whom to wrap data keys for. Asked once per client (a put checks it
        against the domain's CA every time all the same)."""
        if self._identity is None:
            self._identity = self._call("GET", "/identity")
        return dict(self._identity)

    def store(self, body: dict[str, Any]) -> dict[str, Any]:
        """Body {statement (signed, action store), blob, wrapped_key}; {record_id, address}."""
        return self._call("POST", "/records", body)

    def fetch(self, record_id: str, statement: dict[str, Any]) -> dict[str, Any]:
        """A signed fetch statement; {record_id, ciphertext_sha256, blob, wrapped_key, delivery}."""
        return self._call("POST", f"/records/{record_id}/fetch", statement)

    def erase(self, record_id: str, statement: dict[str, Any]) -> dict[str, Any]:
        """A signed erase statement; {record_id, erased}."""
        return self._call("DELETE", f"/records/{record_id}", statement)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        where = urlsplit(self.base_url)
        connection = http.client.HTTPSConnection(where.hostname, where.port, timeout=self._timeout_s,
                                                 context=self._tls)
        try:
            status, answer = exchange(connection, method, path, body)
        except OSError as error:
            reason = _reason(error)
            raise DataServiceError(f"cannot reach the data service of {self.domain_id} at {where.netloc}: "
                                   f"{reason}") from None
        if answer is None:
            raise DataServiceError(f"the data service of {self.domain_id} answered {status} "
                                   "without a JSON object", status)
        if status >= 400:
            error = " ".join(str(answer.get("error", "no reason given")).split())
            raise DataServiceError(f"data service of {self.domain_id}: {error} (HTTP {status})", status)
        return answer


def _reason(error: OSError) -> str:
    """One line: a TLS failure says so (a certificate the other side does not take, most often)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: {error.verify_message or 'the server certificate is not trusted'}"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error.strerror or 'handshake failed'}"
    return error.strerror or str(error) or type(error).__name__
