"""A job's change counter wakes the connections awaiting it, from a worker thread, without polling."""

import asyncio
import threading
import time

from ssmusic.serve.changes import Changes


def test_a_bump_from_another_thread_wakes_the_waiter_at_once():
    changes = Changes()

    async def main():
        timer = threading.Timer(0.2, changes.bump)
        start = time.monotonic()
        timer.start()
        version = await changes.wait(0, timeout=30)
        return version, time.monotonic() - start

    version, waited = asyncio.run(main())
    assert version == 1 and waited < 10  # woken by the bump, not by the 30 s timeout


def test_no_change_waits_for_the_timeout_and_a_missed_change_returns_at_once():
    changes = Changes()

    async def main():
        start = time.monotonic()
        quiet = await changes.wait(0, timeout=0.2)
        slept = time.monotonic() - start
        changes.bump()
        missed = await changes.wait(0, timeout=30)  # already changed since version 0: no wait
        return quiet, slept, missed

    quiet, slept, missed = asyncio.run(main())
    assert quiet == 0 and slept >= 0.19 and missed == 1


def test_many_waiters_one_bump():
    changes = Changes()

    async def main():
        waiters = [asyncio.create_task(changes.wait(0, timeout=30)) for _ in range(50)]
        await asyncio.sleep(0.05)
        threading.Thread(target=changes.bump).start()
        return await asyncio.wait_for(asyncio.gather(*waiters), 10)

    assert asyncio.run(main()) == [1] * 50
