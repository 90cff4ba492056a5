"""GET a path of the worker's HTTP endpoint on loopback: (status, body), 4xx/5xx included."""

from __future__ import annotations

import urllib.error
import urllib.request


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
