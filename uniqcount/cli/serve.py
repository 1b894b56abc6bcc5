"""`./run.sh serve`: a page that follows OUTPUT_TOPIC as records are committed, with the minutes, hours
and rolling windows drawn, corrections marked, HyperLogLog bounds as bands, and a range picker
that asks the stored windows (docs/QUERIES.md). http://SERVE_HOST:SERVE_PORT/ (127.0.0.1:8080).

    ./run.sh serve                      # then open http://127.0.0.1:8080/
    ./run.sh serve --serve-port 9000
"""
from __future__ import annotations

import asyncio
import os
import sys

from aiohttp import web
from kafka.errors import KafkaError

from uniqcount.kafka_client import kafka_io
from uniqcount.kafka_client.follow import Follower
from uniqcount.kafka_client.kafka_io import sketches_topic
from uniqcount.runtime import config
from uniqcount.runtime.config import Settings
from uniqcount.runtime.progress import error, status
from uniqcount.web.live import Live, app


class CannotListen(Exception):
    """One line for the user."""


def build_parser() -> config.OneLineParser:
    parser = config.OneLineParser(prog="./run.sh serve", description=__doc__)
    config.add_flags(parser, [*config.CONNECTION, "OUTPUT_TOPIC", "SERVE_PORT", "SERVE_HOST"])
    return parser


async def serve(settings: Settings) -> None:
    """Listen, then follow the topics until cancelled (Ctrl-C) or the Kafka client fails."""
    topics = [settings.output_topic, sketches_topic(settings.output_topic)]
    follower = Follower(settings, topics)
    live = Live(follower, *topics)
    runner = web.AppRunner(app(live), shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, settings.serve_host, settings.serve_port).start()
        except OSError as exc:
            raise CannotListen(f"serve: cannot listen on {settings.serve_host}:{settings.serve_port} "
                               f"(SERVE_HOST, SERVE_PORT): {os.strerror(exc.errno) if exc.errno else exc}") from None
        status(f"serve: http://{settings.serve_host}:{settings.serve_port}/ follows {topics[0]} and {topics[1]} "
               f"(read_committed, from their start); Ctrl-C stops it")
        await live.follow()
    finally:
        await runner.cleanup()
        follower.close()


def main(argv: list[str] | None = None) -> int:
    settings = config.from_args(build_parser().parse_args(argv))
    try:
        kafka_io.require_broker(settings)
        asyncio.run(serve(settings))
    except (kafka_io.BrokerUnavailable, CannotListen) as exc:
        return error(str(exc))
    except KafkaError as exc:
        return error(f"serve: reading {settings.output_topic}: {exc}")
    except KeyboardInterrupt:
        status("serve: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
