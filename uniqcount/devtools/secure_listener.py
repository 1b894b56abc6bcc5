"""A SASL_SSL listener for the local broker, beside its plaintext one: what a managed or company
Kafka asks of a client (TLS with a private CA, SCRAM or PLAIN passwords, ACLs), on 127.0.0.1.

- TLS: a CA and a broker certificate for `localhost` and `127.0.0.1`, made with `openssl` on first
  start in `<home>/tls` (`ca.pem` is what a client trusts); the broker reads them as PEM.
- SASL: SCRAM-SHA-512 and SCRAM-SHA-256 users written at format time (`kafka-storage format
  --add-scram`), PLAIN users in the listener's JAAS line, the same names and passwords.
- ACLs: the StandardAuthorizer. The plaintext listener and the controller are the node's own
  (their ANONYMOUS principal is a super user, as is `admin`); every other user gets only what ACLs
  grant it.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from uniqcount.devtools.localbroker import BrokerError

SCRAM = ("SCRAM-SHA-512", "SCRAM-SHA-256")
ADMIN = "admin"


@dataclass(frozen=True)
class SecureListener:
    port: int
    users: dict[str, str] = field(default_factory=lambda: {ADMIN: "admin-secret"})  # name -> password

    def tls(self, home: Path) -> Path:
        return home / "tls"

    def ca(self, home: Path) -> Path:
        """The CA certificate a client trusts (SSL_CAFILE)."""
        return self.tls(home) / "ca.pem"

    def properties(self, home: Path, host: str) -> dict[str, str]:
        """The broker settings this listener adds (the listener lists themselves are the node's)."""
        plain = " ".join(f'user_{name}="{password}"' for name, password in self.users.items())
        return {
            "sasl.enabled.mechanisms": ",".join([*SCRAM, "PLAIN"]),
            **{f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config":
               "org.apache.kafka.common.security.scram.ScramLoginModule required;" for m in SCRAM},
            "listener.name.sasl_ssl.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain};",
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(self.tls(home) / "broker.pem"),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:ANONYMOUS;User:{ADMIN}",
            "allow.everyone.if.no.acl.found": "false",
        }

    def format_arguments(self) -> list[str]:
        """`kafka-storage format` arguments that write the SCRAM users."""
        return [argument for name, password in self.users.items() for mechanism in SCRAM
                for argument in ("--add-scram", f"{mechanism}=[name={name},password={password}]")]

    def make_certificates(self, home: Path, host: str) -> None:
        """A CA and a broker certificate signed by it, once (a later start reuses them)."""
        tls = self.tls(home)
        if (tls / "broker.pem").exists():
            return
        tls.mkdir(parents=True, exist_ok=True)
        days = "3650"
        _openssl(tls, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                 "-days", days, "-subj", "/CN=uniqcount local CA")
        _openssl(tls, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
                 "-subj", "/CN=localhost")
        (tls / "san.ext").write_text(f"subjectAltName=DNS:localhost,IP:{host}\n")
        _openssl(tls, "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", "broker.crt", "-days", days, "-extfile", "san.ext")
        (tls / "broker.pem").write_bytes((tls / "broker.key").read_bytes() + (tls / "broker.crt").read_bytes())


def _openssl(cwd: Path, *arguments: str) -> None:
    try:
        result = subprocess.run(["openssl", *arguments], cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise BrokerError("openssl not found: the SASL_SSL listener's certificates need it "
                          "(apt-get install openssl)") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BrokerError(f"openssl {arguments[0]} failed in {cwd}: {last}")
