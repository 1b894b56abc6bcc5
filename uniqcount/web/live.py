"""`./run.sh serve`: the live page and the JSON behind it, on aiohttp (one asyncio loop serves the page,
its API and any number of server-sent event streams; kafka-python's blocking poll runs in a thread of
its own, and what it reads is applied on the loop, so nothing here needs a lock).

  GET /                         the page (web/page/: no file from the internet)
  GET /api/windows              the latest records by granularity (?granularity=, ?from=&to=, ?last=N)
  GET /api/unique?from=&to=     the unique users of [from, to), as ./run.sh query prints them
  GET /events                   server-sent events: each batch of records changed, as it is committed
"""
from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from uniqcount.core.board import Board
from uniqcount.core.ranges import StoredIndex, answer, instant
from uniqcount.kafka_client.follow import Follower, Record

PAGE = Path(__file__).parent / "page"
LAST_WINDOWS = 1440  # per granularity in /api/windows unless ?last= or a range says otherwise
KEEP_ALIVE_SECONDS = 15.0
POLL_MS = 500


class Live:
    """The board of `events-output`, the stored windows of its sketches topic, and who waits for news."""

    def __init__(self, follower: Follower, output_topic: str, sketches_topic: str):
        self.follower = follower
        self.output_topic = output_topic
        self.sketches_topic = sketches_topic
        self.board = Board()
        self.index = StoredIndex()
        self.caught_up = False
        self.news = asyncio.Condition()

    def apply(self, records: list[Record]) -> None:
        for record in records:
            if record.topic == self.sketches_topic:
                self.index.add(record.key or b"", record.value)
            else:
                self.board.apply(record.key, record.value)

    def view(self) -> dict[str, Any]:
        """What the page's status line shows."""
        return {"caught_up": self.caught_up, "topic": self.output_topic, "windows": self.board.granularities(),
                "stored_windows": len(self.index), "unreadable": self.board.unreadable + self.index.unreadable}

    def status(self) -> dict[str, Any]:
        return {"seq": self.board.seq, **self.view()}

    async def wait(self, seq: int, shown: dict[str, Any], timeout: float) -> bool:
        """Until a record changes after change `seq` or the view differs from `shown` (True), or `timeout`
        seconds pass (False)."""
        async with self.news:
            try:
                await asyncio.wait_for(self.news.wait_for(lambda: self.board.seq > seq or self.view() != shown),
                                       timeout)
                return True
            except TimeoutError:
                return False

    async def follow(self) -> None:
        """Read and apply until cancelled; an error of the Kafka client ends it (and the server)."""
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1, thread_name_prefix="follow") as reader:
            while True:
                records = await loop.run_in_executor(reader, self.follower.poll, POLL_MS)
                caught_up = self.caught_up or await loop.run_in_executor(reader, self.follower.caught_up)
                if records or caught_up != self.caught_up:
                    self.apply(records)
                    self.caught_up = caught_up
                    async with self.news:
                        self.news.notify_all()


LIVE = web.AppKey("live", Live)


def app(live: Live) -> web.Application:
    application = web.Application()
    application[LIVE] = live
    application.router.add_get("/", page)
    application.router.add_get("/api/windows", windows)
    application.router.add_get("/api/unique", unique)
    application.router.add_get("/events", events)
    application.router.add_static("/static/", PAGE)
    return application


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE / "index.html")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _times(query: Any, *names: str) -> list[int | None]:
    return [instant(query[name]) if query.get(name) else None for name in names]


async def windows(request: web.Request) -> web.Response:
    live = request.app[LIVE]
    query = request.query
    try:
        start, end = _times(query, "from", "to")
        last = int(query["last"]) if "last" in query else (None if start is not None else LAST_WINDOWS)
    except ValueError as exc:
        return _error(400, str(exc))
    board = live.board
    names = [query["granularity"]] if "granularity" in query else list(board.granularities())
    parts = [json.dumps(name).encode() + b":[" + b",".join(board.windows(name, start, end, last)) + b"]"
             for name in names]
    body = b'{"status":' + json.dumps(live.status()).encode() + b',"windows":{' + b",".join(parts) + b"}}"
    return web.Response(body=body, content_type="application/json")


async def unique(request: web.Request) -> web.Response:
    live = request.app[LIVE]
    try:
        start, end = _times(request.query, "from", "to")
    except ValueError as exc:
        return _error(400, str(exc))
    if start is None or end is None:
        return _error(400, "give both from and to: epoch seconds or ISO 8601 times (2016-07-11T13:39:00Z)")
    if start >= end:
        return _error(400, f"from must be before to: {request.query['from']} is not before {request.query['to']}")
    if not len(live.index):
        return _error(404, f"nothing stored in {live.sketches_topic} yet: no window is final "
                           f"(or consumer.py runs with SKETCH_RETENTION empty)")
    return web.json_response(answer(live.index, start, end))


async def events(request: web.Request) -> web.StreamResponse:
    """Every record changed after the page's last event (Last-Event-ID, or ?after= from /api/windows'
    status.seq); `reset` when the board's log no longer reaches back that far (the page reloads its
    data); `status` when the counts of windows or catching up change; a comment to keep the line open."""
    live = request.app[LIVE]
    try:
        seq = int(request.headers.get("Last-Event-ID") or request.query.get("after") or live.board.seq)
    except ValueError:
        return _error(400, "after: a number, the seq of /api/windows' status")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    shown: dict[str, Any] = {}
    try:
        while True:
            changed = live.board.since(seq)
            if changed is None:
                await response.write(b"event: reset\ndata: {}\n\n")
                return response
            if changed:
                seq = live.board.seq
                await response.write(b"id: %d\ndata: [%s]\n\n" % (seq, b",".join(changed)))
            if live.view() != shown:
                shown = live.view()
                await response.write(b"event: status\ndata: %s\n\n" % json.dumps(shown).encode())
            if not await live.wait(seq, shown, KEEP_ALIVE_SECONDS):
                await response.write(b": keep-alive\n\n")
    except ConnectionResetError:  # the page went away
        return response
