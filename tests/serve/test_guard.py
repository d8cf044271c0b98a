"""Who may use the demo: Host names it owns, its own Origin; and an access log line per request."""

import asyncio
import json
import logging

import pytest

from ssmusic.serve.guard import AccessLog, HostGuard, host_name


@pytest.mark.parametrize("host,name", [("localhost:8000", "localhost"), ("[::1]:8000", "::1"), ("[::1]", "::1"),
                                       ("Example.COM", "example.com"), ("10.0.0.5:80", "10.0.0.5")])
def test_host_names(host, name):
    assert host_name(host) == name


async def ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def answer(app, headers: dict, path: str = "/api/info", method: str = "GET") -> tuple[int, bytes]:
    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "client": ("127.0.0.1", 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, None, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("bind,host,allowed", [
    ("127.0.0.1", "127.0.0.1:8000", True), ("127.0.0.1", "localhost:8000", True), ("127.0.0.1", "[::1]:8000", True),
    ("127.0.0.1", "evil.example:8000", False),  # DNS rebinding: another site's name pointed at us
    ("127.0.0.1", "10.0.0.5:8000", False), ("10.0.0.5", "10.0.0.5:8000", True),
    ("0.0.0.0", "192.168.1.20:8000", True), ("0.0.0.0", "evil.example", False), ("::", "[fe80::1]:80", True),
    ("myhost.lan", "myhost.lan:8000", True), ("127.0.0.1", "", False)])
def test_host_header_must_name_this_server(bind, host, allowed):
    status, body = answer(HostGuard(ok_app, bind), {"Host": host})
    assert status == (200 if allowed else 403)
    if not allowed:
        assert "not a name of this server" in json.loads(body)["error"]


def test_allow_host_adds_names():
    assert answer(HostGuard(ok_app, "0.0.0.0", ("studio.lan",)), {"Host": "studio.lan:8000"})[0] == 200


@pytest.mark.parametrize("origin,allowed", [(None, True), ("http://127.0.0.1:8000", True),
                                            ("http://evil.example", False), ("null", False),
                                            ("http://localhost:8000", False), ("https://127.0.0.1:8000", False)])
def test_only_this_servers_own_page_may_call_it(origin, allowed):
    headers = {"Host": "127.0.0.1:8000", **({"Origin": origin} if origin else {})}
    status, body = answer(HostGuard(ok_app, "127.0.0.1"), headers, "/api/generate", "POST")
    assert status == (200 if allowed else 403)
    if not allowed:
        assert "cross-origin request" in json.loads(body)["error"]


def test_access_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="ssmusic.serve.access"):
        answer(AccessLog(ok_app), {"Host": "127.0.0.1"}, "/api/info")
    assert caplog.records and '127.0.0.1 "GET /api/info" 200 5 B' in caplog.records[-1].getMessage()
