"""Who may talk to the demo, and a line per request: two small ASGI middlewares.

HostGuard: the server answers only requests addressed to it by a name it owns. A page on another
site cannot queue jobs here: a cross-origin request carries an Origin that is not this server's
(refused, 403), and DNS rebinding (the other site's name re-pointed at 127.0.0.1) arrives with that
site's name in Host (refused, 403). Allowed Host names: localhost, 127.0.0.1, [::1], the --host
address, any IP address when bound to all interfaces (0.0.0.0 / ::; an address cannot be rebound),
and names given with --allow-host.

AccessLog: one line per request once its response ends (streams included): client, method, path,
status, bytes, duration.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time

log = logging.getLogger("ssmusic.serve.access")
LOOPBACK = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("", "0.0.0.0", "::")


def host_name(host: str) -> str:
    """'[::1]:8000' -> '::1', 'Example.com:80' -> 'example.com'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class HostGuard:
    def __init__(self, app, bind_host: str, allow_hosts: tuple[str, ...] = ()) -> None:
        self.app = app
        self.any_ip = bind_host in WILDCARDS
        self.names = {*LOOPBACK, *(host_name(h) for h in allow_hosts)}
        if not self.any_ip:
            self.names.add(host_name(bind_host) if not _is_ip(bind_host) else bind_host.lower())

    def allows(self, name: str) -> bool:
        return name in self.names or (self.any_ip and _is_ip(name))

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.allows(host_name(host)):
            return await _refuse(send, 403, f"Host {host[:100]!r} is not a name of this server (a page using "
                                            "another site's name, e.g. by DNS rebinding?); open it as "
                                            "http://127.0.0.1:PORT/ or start it with --allow-host NAME")
        origin = headers.get(b"origin")
        if origin is not None and origin.decode("latin-1") != f"http://{host}":
            return await _refuse(send, 403, f"cross-origin request from {origin.decode('latin-1')[:100]!r} "
                                            "refused: only this server's own page may use its API")
        await self.app(scope, receive, send)


class AccessLog:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, seen = time.monotonic(), {"status": 0, "bytes": 0}

        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            client = (scope.get("client") or ("-",))[0]
            log.info('%s "%s %s" %s %d B %.1f ms', client, scope["method"], scope["path"], seen["status"] or "-",
                     seen["bytes"], 1000 * (time.monotonic() - start))
