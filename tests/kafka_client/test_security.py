"""The security settings as kafka-python's arguments, and the mistakes they show by themselves (one
line each, before any connection); the password never shown."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from uniqcount import REPO
from uniqcount.kafka_client.security import client_options
from uniqcount.runtime import config


def settings(**environ: str) -> config.Settings:
    return config.load(environ={"BOOTSTRAP_SERVERS": "broker.example.com:9093", **environ})


def test_plaintext_is_the_address_alone():
    assert client_options(settings()) == {"bootstrap_servers": "broker.example.com:9093",
                                          "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_takes_the_user_the_password_and_the_ca(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA")
    options = client_options(settings(SECURITY_PROTOCOL="sasl_ssl", SASL_MECHANISM="scram-sha-256",
                                      SASL_USERNAME="alice", SASL_PASSWORD="s3cret", SSL_CAFILE=str(ca)))
    assert options == {"bootstrap_servers": "broker.example.com:9093", "security_protocol": "SASL_SSL",
                       "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "alice",
                       "sasl_plain_password": "s3cret", "ssl_cafile": str(ca), "ssl_certfile": None,
                       "ssl_keyfile": None, "ssl_check_hostname": True}


def test_the_password_file_is_read_only_when_only_its_owner_can(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    secret.chmod(0o644)
    environ = {"SECURITY_PROTOCOL": "SASL_PLAINTEXT", "SASL_USERNAME": "alice", "SASL_PASSWORD_FILE": str(secret)}
    with pytest.raises(SystemExit, match=re.escape(f"error: SASL_PASSWORD_FILE={secret} can be read by others "
                                                   f"(mode 644): chmod 600 {secret}")):
        settings(**environ)
    secret.chmod(0o600)
    assert client_options(settings(**environ))["sasl_plain_password"] == "from-a-file"


@pytest.mark.parametrize("environ, line", [
    ({"SECURITY_PROTOCOL": "SASL_SSL", "SASL_PASSWORD": "x"}, "SECURITY_PROTOCOL=SASL_SSL needs SASL_USERNAME"),
    ({"SECURITY_PROTOCOL": "SASL_SSL", "SASL_USERNAME": "a"},
     "SECURITY_PROTOCOL=SASL_SSL needs SASL_PASSWORD (in the environment) or SASL_PASSWORD_FILE"),
    ({"SECURITY_PROTOCOL": "SASL_SSL", "SASL_USERNAME": "a", "SASL_PASSWORD": "x", "SASL_PASSWORD_FILE": "/p"},
     "SASL_PASSWORD and SASL_PASSWORD_FILE are both set: keep one"),
    ({"SECURITY_PROTOCOL": "SASL_SSL", "SASL_USERNAME": "a", "SASL_PASSWORD": "x", "SASL_MECHANISM": "OAUTHBEARER"},
     "setting SASL_MECHANISM='OAUTHBEARER' is not valid: expected one of SCRAM-SHA-512, SCRAM-SHA-256, PLAIN"),
    ({"SASL_USERNAME": "a", "SASL_PASSWORD": "x"},
     "SASL_USERNAME, SASL_PASSWORD set, but SECURITY_PROTOCOL=PLAINTEXT sends no password"),
    ({"SSL_CAFILE": "/ca.pem"}, "SSL_CAFILE set, but SECURITY_PROTOCOL=PLAINTEXT uses no TLS"),
    ({"SECURITY_PROTOCOL": "SSL", "SSL_CAFILE": "/no/such/ca.pem"}, "SSL_CAFILE=/no/such/ca.pem: no such file"),
    ({"SECURITY_PROTOCOL": "SASL_SSL", "SASL_USERNAME": "a", "SASL_PASSWORD_FILE": "/no/such/file"},
     "SASL_PASSWORD_FILE=/no/such/file: cannot read it (No such file or directory)"),
])
def test_a_mistake_is_one_line_naming_the_setting_when_the_settings_load(environ, line):
    with pytest.raises(SystemExit, match=re.escape(f"error: {line}")):
        settings(**environ)


def test_mutual_tls_needs_the_certificate_and_the_key(tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("a certificate")
    with pytest.raises(SystemExit, match="^error: mutual TLS needs both SSL_CERTFILE and SSL_KEYFILE$"):
        settings(SECURITY_PROTOCOL="SSL", SSL_CERTFILE=str(cert))


def test_the_password_is_never_shown():
    """Not in --help (no flag at all), nor in the settings' repr."""
    environ = {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_USERNAME": "alice", "SASL_PASSWORD": "hunter2-secret"}
    for script in ("consumer.py", "producer.py"):
        shown = subprocess.run([sys.executable, str(REPO / script), "--help"], env={**environ, "PATH": ""},
                               capture_output=True, text=True, cwd=REPO)
        assert shown.returncode == 0 and "hunter2" not in shown.stdout and "--sasl-password " not in shown.stdout
        assert "--sasl-username" in shown.stdout
    assert "hunter2" not in repr(config.load(environ=environ))
