"""How every Kafka client of the project reaches the brokers: their address and, on a secured
cluster, TLS and SASL, as kafka-python's keyword arguments. One place, so that no client (the
consumer's transactional producers, the state and partials readers, admin calls) is left speaking
plaintext to a SASL_SSL listener.

The password comes from SASL_PASSWORD (the environment, best) or the file SASL_PASSWORD_FILE names,
which must be readable by its owner only, as ssh asks of a private key. It is never printed: it
has no flag (a command line is visible to every user of the machine) and is left out of the
settings' repr. `check` runs once, when config.py loads the settings.
"""
from __future__ import annotations

import ssl
import stat
from pathlib import Path
from typing import Any, Protocol, Union


class ConnectionSettings(Protocol):
    """What this module reads of the settings (runtime/config.py's Settings has them all)."""
    @property
    def bootstrap_servers(self) -> str: ...
    @property
    def security_protocol(self) -> str: ...
    @property
    def sasl_mechanism(self) -> str: ...
    @property
    def sasl_username(self) -> str: ...
    @property
    def sasl_password(self) -> str: ...
    @property
    def sasl_password_file(self) -> str: ...
    @property
    def ssl_cafile(self) -> str: ...
    @property
    def ssl_certfile(self) -> str: ...
    @property
    def ssl_keyfile(self) -> str: ...
    @property
    def ssl_check_hostname(self) -> bool: ...


Brokers = Union[str, ConnectionSettings]  # a bare address (plaintext: tests, devtools), or the settings


def options(brokers: Brokers) -> dict[str, Any]:
    """kafka-python's keyword arguments to reach `brokers`."""
    return {"bootstrap_servers": brokers} if isinstance(brokers, str) else client_options(brokers)


def address(brokers: Brokers) -> str:
    return brokers if isinstance(brokers, str) else brokers.bootstrap_servers


class SecurityMistake(Exception):
    """One line for the user: the security settings cannot work as given."""


def sasl(settings: ConnectionSettings) -> bool:
    return settings.security_protocol.startswith("SASL_")


def tls(settings: ConnectionSettings) -> bool:
    return settings.security_protocol.endswith("SSL")


def client_options(settings: ConnectionSettings) -> dict[str, Any]:
    """kafka-python's keyword arguments for the brokers of `settings` (checked when loaded)."""
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers,
                               "security_protocol": settings.security_protocol}
    if sasl(settings):
        options.update(sasl_mechanism=settings.sasl_mechanism, sasl_plain_username=settings.sasl_username,
                       sasl_plain_password=password(settings))
    if tls(settings):
        options.update(ssl_cafile=settings.ssl_cafile or None, ssl_certfile=settings.ssl_certfile or None,
                       ssl_keyfile=settings.ssl_keyfile or None, ssl_check_hostname=settings.ssl_check_hostname)
    return options


def tls_context(brokers: Brokers) -> ssl.SSLContext | None:
    """The TLS the clients speak (None: plaintext), for the probe, which speaks it without kafka-python."""
    if isinstance(brokers, str) or not tls(brokers):
        return None
    context = ssl.create_default_context(cafile=brokers.ssl_cafile or None)
    context.check_hostname = brokers.ssl_check_hostname
    if brokers.ssl_certfile:
        context.load_cert_chain(brokers.ssl_certfile, brokers.ssl_keyfile)
    return context


def check(settings: ConnectionSettings) -> None:
    """The mistakes the settings show by themselves, before any connection: one line each."""
    protocol = settings.security_protocol
    if sasl(settings):
        if not settings.sasl_username:
            raise SecurityMistake(f"SECURITY_PROTOCOL={protocol} needs SASL_USERNAME")
        if settings.sasl_password and settings.sasl_password_file:
            raise SecurityMistake("SASL_PASSWORD and SASL_PASSWORD_FILE are both set: keep one")
        if not settings.sasl_password and not settings.sasl_password_file:
            raise SecurityMistake(f"SECURITY_PROTOCOL={protocol} needs SASL_PASSWORD (in the environment) "
                                  "or SASL_PASSWORD_FILE")
        password(settings)  # the file readable, by its owner only
    else:
        given = [name for name, value in (("SASL_USERNAME", settings.sasl_username),
                                          ("SASL_PASSWORD", settings.sasl_password),
                                          ("SASL_PASSWORD_FILE", settings.sasl_password_file)) if value]
        if given:
            raise SecurityMistake(f"{', '.join(given)} set, but SECURITY_PROTOCOL={protocol} sends no password: "
                                  "use SASL_SSL (or SASL_PLAINTEXT)")
    files = (("SSL_CAFILE", settings.ssl_cafile), ("SSL_CERTFILE", settings.ssl_certfile),
             ("SSL_KEYFILE", settings.ssl_keyfile))
    if not tls(settings):
        given = [name for name, value in files if value]
        if given:
            raise SecurityMistake(f"{', '.join(given)} set, but SECURITY_PROTOCOL={protocol} uses no TLS: "
                                  "use SSL or SASL_SSL")
        return
    for name, value in files:
        if value and not Path(value).is_file():
            raise SecurityMistake(f"{name}={value}: no such file")
    if bool(settings.ssl_certfile) != bool(settings.ssl_keyfile):
        raise SecurityMistake("mutual TLS needs both SSL_CERTFILE and SSL_KEYFILE")


def password(settings: ConnectionSettings) -> str:
    """SASL_PASSWORD, or the first line of SASL_PASSWORD_FILE (which only its owner may read)."""
    if not settings.sasl_password_file:
        return settings.sasl_password
    path = Path(settings.sasl_password_file)
    try:
        mode = path.stat().st_mode
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SecurityMistake(f"SASL_PASSWORD_FILE={path}: cannot read it ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecurityMistake(f"SASL_PASSWORD_FILE={path} can be read by others (mode {stat.S_IMODE(mode):o}): "
                              f"chmod 600 {path}")
    if not lines or not lines[0]:
        raise SecurityMistake(f"SASL_PASSWORD_FILE={path}: its first line is empty")
    return lines[0]
