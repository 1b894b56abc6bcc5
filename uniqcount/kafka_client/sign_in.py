"""Does the broker let this client in? A SASL sign-in tried once at start-up, so that a wrong
password, an unknown user or a mechanism the broker does not offer is one line naming the settings,
not kafka-python's "Unable to bootstrap" after its timeout.

kafka-python 3.0.12 turns a refused sign-in during bootstrap into a timeout; the refusal itself it
only logs, with the exception as the argument of a line of `kafka.net.manager` ("Connection
failed") or `kafka.net.connection` ("Connection lost"), whichever sees it first: listening to one
of them only missed it in one CI run of several. The exception is taken from the log record here
(its type, not the text of the line).
"""
from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, SaslAuthenticationFailedError, UnsupportedSaslMechanismError

from uniqcount.kafka_client.security import ConnectionSettings, options, sasl

SIGN_IN_SECONDS = (2, 8)  # a refusal comes within a round trip; a slow network gets a second, longer try
REFUSALS = (SaslAuthenticationFailedError, UnsupportedSaslMechanismError)


class _Refusals(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.found: list[Exception] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.found += [arg for arg in args if isinstance(arg, REFUSALS)]


def refusal(settings: ConnectionSettings) -> str | None:
    """Why the brokers refuse this client's SASL sign-in (None: in, or no SASL, or not a refusal)."""
    if not sasl(settings):
        return None
    refusals, logger = _Refusals(), logging.getLogger("kafka.net")
    logger.addHandler(refusals)
    try:
        for seconds in SIGN_IN_SECONDS:
            try:
                KafkaAdminClient(**options(settings), bootstrap_timeout_ms=seconds * 1000).close()
                return None
            except KafkaError:
                if refusals.found:
                    why = str(refusals.found[0]).rsplit(": ", 1)[-1].strip()
                    return (f"the broker refuses {settings.sasl_username} with {settings.sasl_mechanism} ({why}): "
                            "check SASL_USERNAME, SASL_PASSWORD and SASL_MECHANISM")
        return None  # no answer, but no refusal: the clients' own timeouts and outage rules take it from here
    finally:
        logger.removeHandler(refusals)
