"""`./run.sh serve` in a real browser: Debian's headless Chromium, driven by Selenium (.ci/run installs
both). The page is opened before any record exists; a consumer then counts half of `sample-late`, and
the page shows each minute with what json.loads counts, without a reload; the second half arrives, the
page follows (corrections marked); a range typed into the picker shows json.loads' count. The
screenshot the README shows is the one this test takes (results/live.png)."""
from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.truth import users_of_frames
from tests.broker.test_exactly_once import committed
from tests.broker.test_metrics import free_port
from tests.helpers import LATE, kafka_env, needs_samples, produce, start_consumer
from uniqcount import REPO
from uniqcount.core.records import iso_utc

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOT = REPO / "results" / "live.png"
WAIT = 90.0
SERVE = [str(REPO / "run.sh"), "serve"]  # as the README shows it

pytestmark = [needs_samples, pytest.mark.skipif(
    not (CHROMIUM.exists() and DRIVER.exists()) and not os.environ.get("CI"),
    reason="no Debian chromium and chromium-driver here (.ci/run installs them)")]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(str(DRIVER)))
    yield driver
    driver.quit()


def until(what, check, timeout: float = WAIT):
    """`check()`'s first truthy value; the last one seen in the failure otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        seen = check()
        if seen:
            return seen
        assert time.monotonic() < deadline, f"{what}: still {seen!r} after {timeout:.0f} s"
        time.sleep(0.3)


def shown_minutes(driver) -> dict[int, int]:
    """The minutes the chart draws: start -> unique users, read off the page's own points."""
    points = driver.execute_script("return [...document.querySelectorAll('#chart-minute circle')]"
                                   ".map(c => [c.dataset.key, Number(c.dataset.users), c.dataset.final])")
    return {int(key.split(":")[1]): users for key, users, final in points if final == "true"}


def test_the_live_page_follows_a_real_run_and_answers_a_range(bootstrap, tmp_path, browser):
    from selenium.webdriver.common.by import By

    lines = [line for line in gzip.decompress(LATE.read_bytes()).splitlines() if line.strip()]
    halves = lines[:len(lines) // 2], lines
    truth = [{start: len(users) for (_, start), users in users_of_frames(half, ["minute"]).items()} for half in halves]
    port = free_port()
    env = kafka_env(bootstrap, ROLLING="10m", IDLE_FLUSH_SECONDS="2", CHECKPOINT_SECONDS="1", SERVE_PORT=str(port))
    serve = subprocess.Popen(SERVE, cwd=REPO, env={**os.environ, **env},
                             stderr=open(tmp_path / "serve.log", "wb"))
    consumer = start_consumer(env, open(tmp_path / "consumer.log", "wb"))
    try:
        until("the page served", lambda: _loaded(browser, port))
        until("an empty chart", lambda: "no records yet" in browser.find_element(By.ID, "chart-minute").text)
        browser.execute_script("window.sameLoad = true")
        steps = [(lines[:len(halves[0])], len(halves[0]), truth[0]), (lines[len(halves[0]):], len(lines), truth[1])]
        for n, (new, frames, minutes) in enumerate(steps):
            produce(env, tmp_path / f"half{n}.jsonl", b"\n".join(new))
            until(f"half {n} committed", lambda frames=frames: committed(bootstrap, env) == frames)
            until(f"half {n}'s minutes on the page", lambda minutes=minutes: shown_minutes(browser) == minutes or None)
            assert browser.execute_script("return window.sameLoad") is True, "the page reloaded"
        corrected = browser.find_elements(By.CSS_SELECTOR, "#chart-minute circle.corrected")
        assert corrected and browser.find_elements(By.CSS_SELECTOR, "#corrected li[data-key^='minute:']")
        assert browser.find_elements(By.CSS_SELECTOR, "#chart-rolling circle[data-key^='rolling_10m:']")
        assert not browser.find_element(By.ID, "chart-rolling").get_attribute("hidden")

        minutes = sorted(truth[1])
        start, end = minutes[1], minutes[-2] + 60  # [second minute, end of the last but one)
        for field, value in (("from", iso_utc(start)), ("to", str(end))):
            box = browser.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        browser.find_element(By.ID, "count").click()
        answer = until("the range's answer", lambda: browser.find_element(By.ID, "answer").get_attribute("data-users"))
        expected = set().union(*(users for (_, s), users in users_of_frames(lines, ["minute"]).items() if start <= s < end))
        assert int(answer) == len(expected) and browser.find_element(By.ID, "answer").get_attribute("data-estimate") == "exact"
        assert api(port, "/api/unique?from=2016-07-11T13:40Z&to=2016-07-11T13:40Z") == \
            (400, {"error": "from must be before to: 2016-07-11T13:40Z is not before 2016-07-11T13:40Z"})
        assert api(port, "/api/unique?from=yesterday&to=1") == \
            (400, {"error": "'yesterday' is no time: give epoch seconds or ISO 8601 (2016-07-11T13:39:00Z)"})
        status, body = api(port, f"/api/windows?granularity=minute&from={start}&to={end}")
        assert status == 200 and [(r["window_start"], r["unique_users"]) for r in body["windows"]["minute"]] == \
            [(s, n) for s, n in sorted(truth[1].items()) if start <= s < end]
        taken = subprocess.run(SERVE, cwd=REPO, env={**os.environ, **env},
                               capture_output=True, text=True, timeout=60)
        assert taken.returncode == 1 and taken.stderr.strip() == \
            f"error: serve: cannot listen on 127.0.0.1:{port} (SERVE_HOST, SERVE_PORT): Address already in use"
        browser.execute_script("window.scrollTo(0, 0)")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT))
    finally:
        for process in (consumer, serve):
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    assert serve.returncode == 0, (tmp_path / "serve.log").read_text()


def api(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as failed:
        return failed.code, json.load(failed)


def _loaded(driver, port: int) -> bool:
    """The page loaded and following (the server may not listen yet)."""
    from selenium.common.exceptions import WebDriverException

    try:
        driver.get(f"http://127.0.0.1:{port}/")
        return driver.find_element("id", "status").text.startswith(("following", "reading"))
    except WebDriverException:
        return False
