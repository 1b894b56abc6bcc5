"""Does a Kafka broker answer at an address? One ApiVersions round trip, no client library.

An open TCP port is not enough (anything can listen on 9092), and a full client takes seconds to
give up; a v0 ApiVersions request is the one call every Kafka version answers.
"""
from __future__ import annotations

import socket
import struct

API_VERSIONS = 18
_CORRELATION_ID = 0x75C0


def parse_servers(bootstrap: str) -> list[tuple[str, int]]:
    """'a:9092,b:9093' -> [('a', 9092), ('b', 9093)]; IPv6 as [::1]:9092."""
    servers = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"bootstrap server {item!r} is not host:port")
        servers.append((host.strip("[]"), int(port)))
    if not servers:
        raise ValueError("no bootstrap server given")
    return servers


def _api_versions_request() -> bytes:
    client_id = b"uniqcount-probe"
    body = struct.pack(">hhih", API_VERSIONS, 0, _CORRELATION_ID, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def kafka_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True if a Kafka broker at host:port answers an ApiVersions request."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_api_versions_request())
            (size,) = struct.unpack(">i", _read_exact(sock, 4))
            if size < 6:
                return False
            correlation_id, error_code = struct.unpack(">ih", _read_exact(sock, 6))
            return correlation_id == _CORRELATION_ID and error_code == 0
    except (OSError, ConnectionError, struct.error):
        return False


def any_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    return any(kafka_answers(h, p, timeout) for h, p in parse_servers(bootstrap))


def port_in_use(host: str, port: int) -> bool:
    """True if something (Kafka or not) accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def is_local(bootstrap: str) -> bool:
    """A local broker may be started only for a bootstrap list that names this machine alone."""
    return all(host in LOOPBACK or host.startswith("127.") for host, _ in parse_servers(bootstrap))
