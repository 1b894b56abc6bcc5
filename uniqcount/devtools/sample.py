"""The sample ./run.sh loads: SAMPLE_PATH if present, else downloaded from SAMPLE_URL, else generated
in the canonical shape (1,000,000 frames of ~2 KB, 1000 frames/s, 100,000 users).

    python -m uniqcount.devtools.sample      prints the sample's path on stdout, progress on stderr
"""
from __future__ import annotations

import shutil
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from urllib.parse import urlsplit

from uniqcount import REPO
from uniqcount.devtools import generate
from uniqcount.runtime import config
from uniqcount.runtime.config import Settings
from uniqcount.runtime.progress import status
from uniqcount.runtime.sources import GZIP_MAGIC

TIMEOUT = 10.0


def download(url: str, target: Path) -> None:
    """Fails within seconds when offline: name resolution is bounded too, not only the socket."""
    parts = urlsplit(url)
    with ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(socket.getaddrinfo, parts.hostname, parts.port or 80).result(timeout=TIMEOUT)
        except FutureTimeout:
            raise OSError(f"name lookup of {parts.hostname} timed out") from None
    partial = target.with_name(target.name + ".partial")
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(partial, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)
    with open(partial, "rb") as check:
        if check.read(2) != GZIP_MAGIC:
            partial.unlink()
            raise OSError("the download is not gzip data")
    partial.rename(target)


def generate_canonical(target: Path) -> None:
    partial = target.with_name(target.name + ".partial.gz")
    generate.main(["-c", "1000000", "-r", "1000", "-n", "100000", "-s", "2048", "-o", str(partial)])
    partial.rename(target)


def ensure_sample(settings: Settings) -> Path:
    path = REPO / settings.sample_path
    if path.exists():
        status(f"sample: using {path}")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    url = settings.sample_url
    if url:
        status(f"sample: downloading {url} ...")
        try:
            download(url, path)
            return path
        except (OSError, urllib.error.URLError) as exc:
            status(f"sample: download failed ({getattr(exc, 'reason', exc)}); generating one instead")
    status(f"sample: generating the canonical sample into {path} (about a minute) ...")
    generate_canonical(path)
    return path


if __name__ == "__main__":
    print(ensure_sample(config.load()))
