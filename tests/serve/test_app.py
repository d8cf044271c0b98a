"""The page's routes in process: an idle follower waits on its job's change counter instead of polling
(each connection used to re-read its job every 50 ms), and wakes as soon as a worker changes it."""

import asyncio
import threading
from types import SimpleNamespace

import pytest

from ssmusic.model.sampling import SamplingParams
from ssmusic.serve.validate import Request

pytest.importorskip("starlette", reason="the web demo needs the demo extra: pip install -e '.[demo]'")
from ssmusic.serve import app as app_module  # noqa: E402
from ssmusic.serve.jobs import Job  # noqa: E402

IDLE_S = 0.6  # a 50 ms poll would look 12 times in this


class CountedPcm(bytearray):
    """The job's PCM buffer, counting how often a stream looks at its length."""

    looks = 0

    def __len__(self) -> int:
        CountedPcm.looks += 1
        return super().__len__()


def from_a_worker(action) -> None:
    """What a worker thread does: change the job, then bump its counter."""
    worker = threading.Thread(target=action)
    worker.start()
    worker.join()


def demo_api(job: Job) -> app_module.DemoApi:
    api = app_module.DemoApi.__new__(app_module.DemoApi)  # the routes below need only the queue and rate
    api.queue = SimpleNamespace(jobs={job.id: job})
    api.model = SimpleNamespace(sample_rate=1000)
    return api


def test_an_idle_event_stream_reads_its_job_only_when_it_changes(monkeypatch):
    job = Job("j", Request("a tune", 1.0, SamplingParams(seed=0)), total_samples=1000, frames_total=10)
    reads = []
    monkeypatch.setattr(app_module, "status_of", lambda queue, job: reads.append(job.state) or {"state": job.state})

    async def follow() -> None:
        stream = (await demo_api(job).events(SimpleNamespace(path_params={"job_id": "j"}))).body_iterator
        assert await anext(stream) == f"retry: {app_module.RETRY_MS}\n\n"
        assert await anext(stream) == 'data: {"state": "queued"}\n\n'
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)  # it catches up with the counter once, then waits
        looked = len(reads)
        await asyncio.sleep(IDLE_S)
        assert not waiting.done() and len(reads) == looked and job.watchers == 1  # nothing changed: not looked at

        def start() -> None:
            job.state = "running"
            job.changes.bump()

        from_a_worker(start)
        assert await asyncio.wait_for(waiting, 5) == 'data: {"state": "running"}\n\n'
        assert reads[looked:] == ["running"]

        def finish() -> None:
            job.state = "done"
            job.changes.bump()

        from_a_worker(finish)
        assert await asyncio.wait_for(anext(stream), 5) == 'data: {"state": "done"}\n\n'
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        assert job.watchers == 0

    asyncio.run(follow())


def test_an_idle_audio_stream_waits_for_the_next_chunk():
    job = Job("j", Request("a tune", 1.0, SamplingParams(seed=0)), total_samples=4, frames_total=1,
              state="running", pcm=CountedPcm())

    async def listen() -> None:
        stream = (await demo_api(job).audio(SimpleNamespace(path_params={"job_id": "j"}))).body_iterator
        assert len(await anext(stream)) == 44  # the WAV header, holding the final length
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.05)
        looks = CountedPcm.looks
        await asyncio.sleep(IDLE_S)
        assert not waiting.done() and CountedPcm.looks == looks  # no chunk came: the buffer was not looked at

        def chunk() -> None:
            job.pcm.extend(b"\x01\x00" * 4)
            job.changes.bump()

        from_a_worker(chunk)
        assert await asyncio.wait_for(waiting, 5) == b"\x01\x00" * 4
        with pytest.raises(StopAsyncIteration):  # all 4 samples sent: the stream ends
            await anext(stream)

    asyncio.run(listen())
