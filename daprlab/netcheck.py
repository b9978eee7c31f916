"""Small, dependency-free checks of loopback services: ports, HTTP status, Redis PING."""

from __future__ import annotations

import json
import random
import socket
import urllib.error
import urllib.request
from typing import Any

LOOPBACK = "127.0.0.1"
CHECK_TIMEOUT_SECONDS = 1.0
# Linux hands out 32768-60999 to outgoing connections (net.ipv4.ip_local_port_range).
FREE_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()
_random = random.Random()


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(CHECK_TIMEOUT_SECONDS)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """A port nothing uses now, below the kernel's range for outgoing connections.

    A port the OS hands out for binding to 0 comes from that range, so a client socket (any
    HTTP request) can take it before the server that was meant to listen on it starts.
    """
    while True:
        port = _random.randint(*FREE_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


def http_status(url: str) -> int | None:
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT_SECONDS) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (urllib.error.URLError, OSError):
        return None


def http_json(url: str) -> Any:
    """The JSON body of a successful GET, or None."""
    try:
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT_SECONDS) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def redis_ping(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CHECK_TIMEOUT_SECONDS) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
