"""One JSON request over an HTTP(S) connection: what the data-service and diagnosis-server clients share."""

from __future__ import annotations

import http.client
import json
from typing import Any


def exchange(connection: http.client.HTTPConnection, method: str, path: str,
             body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any] | None]:
    """Send `body` as JSON, read the answer, close the connection: (status, the answer when it is a JSON
    object, else None). OSError (ssl.SSLError included) when the server cannot be reached."""
    data = None if body is None else json.dumps(body).encode()
    try:
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read()
    finally:
        connection.close()
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    return response.status, answer if isinstance(answer, dict) else None
