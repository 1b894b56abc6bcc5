"""Does a Kafka broker answer at an address? One ApiVersions round trip, no client library.

An open TCP port is not enough (anything can listen on 9092), and a full client takes seconds to
give up; a v0 ApiVersions request is the one call every Kafka version answers.
"""
from __future__ import annotations

import socket
import ssl
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


def kafka_answers(host: str, port: int, timeout: float = 2.0, tls: ssl.SSLContext | None = None) -> bool:
    """True if a Kafka broker at host:port answers an ApiVersions request (over TLS with `tls`:
    a listener that asks for SASL answers it before the handshake too)."""
    try:
        return _api_versions(host, port, timeout, tls)
    except (OSError, ConnectionError, struct.error):  # ssl.SSLError is an OSError
        return False


def _api_versions(host: str, port: int, timeout: float, tls: ssl.SSLContext | None) -> bool:
    with socket.create_connection((host, port), timeout=timeout) as raw:
        raw.settimeout(timeout)
        with (tls.wrap_socket(raw, server_hostname=host) if tls else raw) as sock:
            sock.sendall(_api_versions_request())
            (size,) = struct.unpack(">i", _read_exact(sock, 4))
            if size < 6:
                return False
            correlation_id, error_code = struct.unpack(">ih", _read_exact(sock, 6))
            return correlation_id == _CORRELATION_ID and error_code == 0


def any_answers(bootstrap: str, timeout: float = 2.0, tls: ssl.SSLContext | None = None) -> bool:
    return any(kafka_answers(h, p, timeout, tls) for h, p in parse_servers(bootstrap))


def why_not(bootstrap: str, tls: ssl.SSLContext | None, timeout: float = 2.0) -> str:
    """What is wrong with the first server that does not answer, in words a user can act on."""
    host, port = parse_servers(bootstrap)[0]
    try:
        if _api_versions(host, port, timeout, tls):
            return f"a Kafka broker answers at {host}:{port}"
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return (f"the certificate of {host}:{port} does not name {host}: connect by a name it holds "
                    "(BOOTSTRAP_SERVERS), or set SSL_CHECK_HOSTNAME=false")
        return (f"the certificate of {host}:{port} is not signed by a CA this client trusts "
                f"({exc.verify_message}): set SSL_CAFILE to the CA that signed it")
    except ssl.SSLError:
        return (f"{host}:{port} does not speak TLS: set SECURITY_PROTOCOL=PLAINTEXT or SASL_PLAINTEXT, "
                "or name its TLS listener in BOOTSTRAP_SERVERS")
    except (OSError, ConnectionError, struct.error):
        pass
    if tls is None and _speaks_tls(host, port, timeout):
        return f"{host}:{port} speaks TLS: set SECURITY_PROTOCOL=SSL or SASL_SSL"
    return f"no Kafka broker answers at {bootstrap}"


def _speaks_tls(host: str, port: int, timeout: float) -> bool:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # only: is it TLS at all?
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            raw.settimeout(timeout)
            with context.wrap_socket(raw, server_hostname=host):
                return True
    except (OSError, ConnectionError):
        return False


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
