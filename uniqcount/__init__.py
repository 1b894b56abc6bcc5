"""uniqcount: unique users per minute, hour, day, ISO week, month and year from a Kafka stream.

Layers, each importing only those below it (tests/core/test_layers.py): `core` (pure), `kafka_client`
(kafka-python specifics), `runtime`, `cli` and `devtools`."""
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # the checkout: config.env, broker/, .venv, .kafka
