"""The console tools' client properties: what the Java client reads back is the settings, a password
with quotes and backslashes included (the SASL_SSL run itself: tests/broker/test_security.py)."""
from __future__ import annotations

import re
from pathlib import Path

from uniqcount.devtools.console_tools import client_properties, properties_text
from uniqcount.runtime import config


def read_properties(text: str) -> dict[str, str]:
    """As java.util.Properties reads `name=value` lines: a backslash escapes the next character."""
    found = {}
    for line in text.splitlines():
        name, _, raw = line.partition("=")
        found[name] = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), raw)
    return found


def jaas_options(line: str) -> dict[str, str]:
    """The quoted options of a JAAS login module line: inside quotes, a backslash escapes the next character."""
    return {name: re.sub(r"\\(.)", r"\1", value) for name, value in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line)}


def settings(**values: str) -> config.Settings:
    return config.load(environ={}).replace(**values)


def test_plaintext_is_the_protocol_alone(tmp_path):
    assert client_properties(settings(security_protocol="PLAINTEXT"), tmp_path) == {"security.protocol": "PLAINTEXT"}


def test_sasl_ssl_reads_back_as_the_settings_with_any_password(tmp_path):
    password = 'p"a\\ss=wo rd\\"'
    chosen = settings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-256", sasl_username='al"ice',
                      sasl_password=password, ssl_cafile="/etc/ca.pem", ssl_check_hostname=False)
    read = read_properties(properties_text(client_properties(chosen, tmp_path)))
    assert read["security.protocol"] == "SASL_SSL" and read["sasl.mechanism"] == "SCRAM-SHA-256"
    assert read["sasl.jaas.config"].startswith("org.apache.kafka.common.security.scram.ScramLoginModule required ")
    assert jaas_options(read["sasl.jaas.config"]) == {"username": 'al"ice', "password": password}
    assert read["ssl.truststore.type"] == "PEM" and read["ssl.truststore.location"] == "/etc/ca.pem"
    assert read["ssl.endpoint.identification.algorithm"] == ""  # Java's way to say: no host name check


def test_mutual_tls_is_a_pem_key_store_of_the_key_then_the_certificate(tmp_path):
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n")
    certificate.write_text("-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n")
    folder = tmp_path / "private"
    folder.mkdir()
    made = client_properties(settings(security_protocol="SSL", ssl_certfile=str(certificate), ssl_keyfile=str(key)),
                             folder)
    assert made["ssl.keystore.type"] == "PEM" and "ssl.truststore.location" not in made
    assert Path(made["ssl.keystore.location"]).read_text() == key.read_text() + certificate.read_text()
    assert "ssl.endpoint.identification.algorithm" not in made  # checked: Java's default
