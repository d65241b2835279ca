"""Client of an orderer's channel participation API (what the `osnadmin` binary does).

The API is served on the orderer's admin endpoint over HTTPS with mutual
TLS; the client certificate is the orderer org admin's TLS client
certificate.

    >>> admin = OSNAdmin.for_orderer(topology, layout, orderer)
    >>> admin.join("public", layout.genesis_block("public").read_bytes())
    ChannelInfo(name='public', status='active', consensus_relation='consenter', height=1)
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medfabric.consortium.layout import NetworkLayout
from medfabric.consortium.topology import Orderer, Topology

CHANNELS_PATH = "/participation/v1/channels"
CONFIG_BLOCK_FIELD = "config-block"


class OSNAdminError(RuntimeError):
    """A channel participation call failed; `status` is the HTTP status (None if there was no answer)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ChannelNotFound(OSNAdminError):
    """The orderer is not a member of the channel (HTTP 404)."""


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    status: str  # "active", "onboarding", "inactive" or "failed"
    consensus_relation: str  # "consenter", "follower", "config-tracker" or "other"
    height: int


class OSNAdmin:
    """One orderer's channel participation API."""

    def __init__(self, host: str, port: int, server_name: str, ca_file: Path, cert_file: Path,
                 key_file: Path, timeout: float = 10.0):
        self._host, self._port = host, port
        self._server_name = server_name
        self._timeout = timeout
        self._context = ssl.create_default_context(cafile=str(ca_file))
        self._context.load_cert_chain(str(cert_file), str(key_file))

    @classmethod
    def for_orderer(cls, topology: Topology, layout: NetworkLayout, orderer: Orderer) -> OSNAdmin:
        """As the admin of the orderer's org, checking the orderer's certificate against its host name."""
        domain = topology.orderer_domain(orderer)
        credentials = layout.orderer_admin_tls(domain)
        return cls(orderer.host, orderer.admin_port, orderer.host_name, layout.orderer_tls_ca(domain),
                   credentials / "client.crt", credentials / "client.key")

    def join(self, channel: str, config_block: bytes) -> ChannelInfo:
        """Join the orderer to `channel` with its genesis (or latest config) block."""
        boundary = uuid.uuid4().hex
        body = b"".join([
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="{CONFIG_BLOCK_FIELD}"; filename="{channel}.block"\r\n'.encode(),
            b"Content-Type: application/octet-stream\r\n\r\n",
            config_block,
            f"\r\n--{boundary}--\r\n".encode(),
        ])
        doc = self._call("POST", CHANNELS_PATH, body, f"multipart/form-data; boundary={boundary}")
        info = _channel_info(doc)
        if info.name != channel:
            raise OSNAdminError(f"{self._address}: the block given to join '{channel}' is of channel '{info.name}'")
        return info

    def list(self) -> list[str]:
        """Names of the channels the orderer is a member of."""
        doc = self._call("GET", CHANNELS_PATH)
        return [entry["name"] for entry in doc.get("channels") or []]

    def info(self, channel: str) -> ChannelInfo:
        """The orderer's status in `channel`; ChannelNotFound if it is not a member."""
        return _channel_info(self._call("GET", f"{CHANNELS_PATH}/{channel}"))

    def remove(self, channel: str) -> None:
        """Remove the orderer from `channel` (its ledger of the channel is deleted)."""
        self._call("DELETE", f"{CHANNELS_PATH}/{channel}")

    @property
    def _address(self) -> str:
        return f"{self._server_name} ({self._host}:{self._port})"

    def _call(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        connection = _HostNameHTTPSConnection(self._host, self._port, self._server_name, self._context,
                                              self._timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            status, payload = response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise OSNAdminError(f"{method} {path} on {self._address}: {exc}") from None
        finally:
            connection.close()
        if 200 <= status < 300:
            return json.loads(payload) if payload.strip() else None
        error = ChannelNotFound if status == 404 else OSNAdminError
        raise error(f"{method} {path} on {self._address}: HTTP {status}: {_server_error(payload)}", status)


class _HostNameHTTPSConnection(http.client.HTTPSConnection):
    """Connects to host:port but verifies the certificate against `server_name`,
    like the peer CLI's --ordererTLSHostnameOverride."""

    def __init__(self, host: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float):
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_name = server_name
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self._server_name)


def _channel_info(doc: Any) -> ChannelInfo:
    try:
        return ChannelInfo(
            name=doc["name"],
            status=doc.get("status", ""),
            consensus_relation=doc.get("consensusRelation", ""),
            height=int(doc.get("height") or 0),
        )
    except (TypeError, KeyError, ValueError):
        raise OSNAdminError(f"unexpected channel participation answer: {str(doc)[:200]}") from None


def _server_error(payload: bytes) -> str:
    """The server's {"error": "..."} message, or the raw body."""
    text = payload.decode(errors="replace").strip()
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text[:200] or "(empty body)"
