"""A version number that worker threads bump and asyncio code awaits: how a connection learns that
its job moved, without polling."""

from __future__ import annotations

import asyncio
import threading


class Changes:
    """`bump()` from any thread; `await wait(seen, timeout)` on the event loop returns the current
    version as soon as it differs from `seen` (at once if it already does), or after `timeout`."""

    def __init__(self) -> None:
        self.version = 0
        self._lock = threading.Lock()
        self._waiters: list[asyncio.Future] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def bump(self) -> None:
        with self._lock:
            self.version += 1
            loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, seen: int, timeout: float) -> int:
        loop = asyncio.get_running_loop()
        with self._lock:  # checked and registered at once: any later bump sees the loop and wakes us
            if self.version != seen:
                return self.version
            self._loop = loop
            waiter = loop.create_future()
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        return self.version
