"""`./run.sh kafka-console-consumer` and the other Kafka console tools, with the project's settings:
the brokers, and on a secured cluster TLS and SASL, as the Java client properties the tools read.

The properties hold the password, so they go to a file only the user can read, in a private
temporary folder removed when the tool ends (the tool runs as a child, not exec'd, for that).
"""
from __future__ import annotations

import signal
import subprocess
import tempfile
from pathlib import Path

from uniqcount.devtools.localbroker import tool_command
from uniqcount.kafka_client.security import ConnectionSettings, password, sasl, tls

CONFIG_FLAGS = {  # how each tool is given client properties
    "kafka-topics": "--command-config",
    "kafka-consumer-groups": "--command-config",
    "kafka-console-consumer": "--consumer.config",
    "kafka-console-producer": "--producer.config",
}
LOGIN_MODULES = {"PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
                 "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
                 "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule"}


def client_properties(settings: ConnectionSettings, folder: Path) -> dict[str, str]:
    """The Java client's properties for `settings`; mutual TLS needs a PEM key store, written to
    `folder` (the key, then the certificate)."""
    properties = {"security.protocol": settings.security_protocol}
    if sasl(settings):
        quoted = [value.replace("\\", "\\\\").replace('"', '\\"') for value in (settings.sasl_username, password(settings))]
        properties["sasl.mechanism"] = settings.sasl_mechanism
        properties["sasl.jaas.config"] = (f'{LOGIN_MODULES[settings.sasl_mechanism]} required '
                                          f'username="{quoted[0]}" password="{quoted[1]}";')
    if tls(settings):
        if settings.ssl_cafile:
            properties.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": settings.ssl_cafile})
        if not settings.ssl_check_hostname:
            properties["ssl.endpoint.identification.algorithm"] = ""
        if settings.ssl_certfile:
            store = folder / "client.pem"
            store.write_text(Path(settings.ssl_keyfile).read_text() + Path(settings.ssl_certfile).read_text())
            properties.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": str(store)})
    return properties


def properties_text(properties: dict[str, str]) -> str:
    """A Java .properties file: backslashes and line breaks escaped in the values."""
    escape = {ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r"}
    return "".join(f"{name}={value.translate(escape)}\n" for name, value in properties.items())


def run_tool(name: str, args: list[str], settings: ConnectionSettings) -> int:
    """Run the tool to its end; its exit code. Ctrl-C reaches the tool (it stops its own way)."""
    with tempfile.TemporaryDirectory(prefix="uniqcount-tool-") as folder:  # mode 700
        if settings.security_protocol != "PLAINTEXT" and CONFIG_FLAGS[name] not in args:
            config = Path(folder) / "client.properties"
            config.touch(mode=0o600)
            config.write_text(properties_text(client_properties(settings, Path(folder))))
            args = [CONFIG_FLAGS[name], str(config), *args]
        tool = subprocess.Popen(tool_command(name, args, settings.bootstrap_servers))
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal sends it to the tool too
        terminate = signal.signal(signal.SIGTERM, lambda *_: tool.terminate())
        try:
            code = tool.wait()
        finally:
            signal.signal(signal.SIGINT, interrupt)
            signal.signal(signal.SIGTERM, terminate)
        return 128 - code if code < 0 else code  # ended by a signal: as a shell says it
