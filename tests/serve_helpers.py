"""Shared by the web demo tests: a real `ssmusic serve` process on a free port, and HTTP helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def running_server(checkpoint, outputs: Path, *extra: str):
    """Start `ssmusic serve --port 0` (the OS picks a free port) and yield its URL."""
    env = {**os.environ, "SSMUSIC_CACHE_DIR": str(outputs / "cache"), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "ssmusic", "serve", "--port", "0", "--checkpoint", str(checkpoint),
               "--outputs", str(outputs), "--threads", "1", *extra]
    log = open(outputs / "server.log", "w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = process.stdout.readline()  # printed once the model is loaded and the socket listens
        if "http://" not in line:
            process.kill()
            process.wait()
            raise RuntimeError(f"ssmusic serve did not start: {line}{(outputs / 'server.log').read_text()[-2000:]}")
        yield line.split()[2].rstrip("/")
        assert process.poll() is None, "the server died during the test"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def call(url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, dict | bytes]:
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body, status, kind = response.read(), response.status, response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        body, status, kind = err.read(), err.code, err.headers.get("Content-Type", "")
    return status, json.loads(body) if kind.startswith("application/json") else body


def post(url: str, body) -> tuple[int, dict]:
    return call(url + "/api/generate", json.dumps(body).encode())


def wait_for(predicate, timeout: float = 120.0, every: float = 0.1):
    """Poll until predicate() is truthy (returned); a generous limit, so no timing is asserted."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
