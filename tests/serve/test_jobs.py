"""The generation queue with a model whose every chunk the test releases: places, limits, expiry."""

import threading
import time
from types import SimpleNamespace

import pytest
import torch

from ssmusic.model.sampling import SamplingParams
from ssmusic.serve import jobs as jobs_module
from ssmusic.serve.jobs import Queue
from ssmusic.serve.validate import Busy, Request


class GatedModel:
    """10 frames per second of 100 samples each at 1 kHz; each frame waits for `release()`."""

    sample_rate = 1000
    config = SimpleNamespace(frame_rate=10.0)
    codec = SimpleNamespace(samples_per_frame=100)

    def __init__(self) -> None:
        self.gate = threading.Semaphore(0)
        self.asked = []

    def check_context(self, steps, prompt_frames) -> None:
        pass

    def release(self, frames: int = 1000) -> None:
        for _ in range(frames):
            self.gate.release()

    def stream(self, prompts, seconds, chunk_seconds, sampling):
        self.asked.append(seconds)
        frames = round(seconds * self.config.frame_rate)
        for done in range(1, frames + 1):
            assert self.gate.acquire(timeout=30)
            yield SimpleNamespace(audio=torch.full((1, 1, 100), 0.5), frames_done=done)


@pytest.fixture
def model(monkeypatch):
    written = []
    monkeypatch.setattr("ssmusic.serve.outputs.write_outputs",
                        lambda model, job, audio, outputs: written.append((job.id, audio.numel())))
    gated = GatedModel()
    gated.written = written
    yield gated
    gated.release()


def request(seconds: float = 0.5) -> Request:
    return Request("a tune", seconds, SamplingParams(seed=0))


def settled(job, state: str) -> None:
    deadline = time.monotonic() + 30
    while job.state != state:
        assert time.monotonic() < deadline, f"job stayed {job.state}"
        time.sleep(0.01)


def test_max_queue_zero_takes_a_request_whenever_a_worker_is_free(model, tmp_path):
    queue = Queue(model, tmp_path, concurrency=1, max_waiting=0)
    first = queue.submit(request())
    with pytest.raises(Busy, match="queue is full"):
        queue.submit(request())  # the worker is busy and nothing may wait
    model.release()
    settled(first, "done")
    settled(queue.submit(request()), "done")  # free again: accepted
    queue.close()


def test_a_request_is_exactly_its_duration_in_whole_frames_trimmed(model, tmp_path):
    queue = Queue(model, tmp_path)
    job = queue.submit(request(0.55))
    assert (job.total_samples, job.frames_total) == (550, 6)  # 6 frames of 100 samples, trimmed to 550
    model.release()
    settled(job, "done")
    assert model.asked == [pytest.approx(0.6)] and model.written == [(job.id, 550)]
    assert len(job.pcm) == 0  # the buffer is freed once the files are written
    queue.close()


def test_places_and_wait_estimates_follow_the_queue(model, tmp_path):
    queue = Queue(model, tmp_path, max_waiting=4, rtf=2.0)
    running, second, third = (queue.submit(request(1.0)) for _ in range(3))
    settled(running, "running")
    model.release(5)
    while running.frames_done < 5:
        time.sleep(0.01)
    assert [queue.position(j) for j in (running, second, third)] == [0, 1, 2]
    assert queue.wait_estimate(second) == pytest.approx(0.5 * 2.0)  # half of the running second left
    assert queue.wait_estimate(third) == pytest.approx(1.5 * 2.0)
    seen = third.changes.version
    queue.cancel(second, "changed my mind")
    assert second.state == "cancelled" and second.error == "changed my mind"
    assert queue.position(third) == 1 and third.changes.version > seen  # told that it moved up
    queue.close()


def test_sweep_cancels_unwatched_jobs_after_the_grace_only(model, tmp_path):
    queue = Queue(model, tmp_path, max_waiting=4, unwatched_grace=10.0)
    watched, left = queue.submit(request()), queue.submit(request())
    watched.watchers = 1
    queue.sweep(now=time.monotonic() + 5)
    assert not left.finished  # within the grace (a page reconnecting)
    queue.sweep(now=time.monotonic() + 11)
    assert left.cancel.is_set() and "nobody followed it for 10 s" in left.error
    assert not watched.cancel.is_set()
    queue.close()


def test_finished_jobs_expire_with_their_files(model, tmp_path):
    queue = Queue(model, tmp_path, max_waiting=8, keep_seconds=60, max_finished=2, delete_files=True)
    done = []
    for _ in range(3):
        job = queue.submit(request(0.1))
        model.release(1)
        settled(job, "done")
        (tmp_path / f"{job.id}.wav").write_bytes(b"RIFF")
        done.append(job)
    queue.sweep()
    assert list(queue.jobs) == [done[1].id, done[2].id]  # the oldest beyond --keep-jobs 2 is forgotten
    assert not (tmp_path / f"{done[0].id}.wav").exists() and (tmp_path / f"{done[1].id}.wav").exists()
    queue.sweep(now=time.monotonic() + 61)
    assert queue.jobs == {} and not list(tmp_path.glob("*.wav"))
    queue.close()


def test_kept_outputs_stay_on_disk_when_the_user_chose_the_folder(model, tmp_path):
    queue = Queue(model, tmp_path, keep_seconds=1, delete_files=False)
    job = queue.submit(request(0.1))
    model.release(1)
    settled(job, "done")
    (tmp_path / f"{job.id}.wav").write_bytes(b"RIFF")
    queue.sweep(now=time.monotonic() + 2)
    assert queue.jobs == {} and (tmp_path / f"{job.id}.wav").exists()
    queue.close()


def test_close_cancels_everything_and_refuses_new_work(model, tmp_path):
    queue = Queue(model, tmp_path, max_waiting=4)
    running, waiting = queue.submit(request()), queue.submit(request())
    settled(running, "running")
    assert queue.close() == 2
    model.release(1)
    settled(running, "cancelled")
    assert waiting.state == "cancelled" and queue.join(timeout=10)
    with pytest.raises(Busy, match="shutting down"):
        queue.submit(request())


def test_a_failing_generation_is_reported_and_the_worker_goes_on(model, tmp_path, monkeypatch):
    queue = Queue(model, tmp_path)
    monkeypatch.setattr(jobs_module.log, "exception", lambda *args: None)  # the traceback is expected here
    model.stream = lambda *a, **k: iter([None])  # not a chunk: AttributeError inside the worker
    broken = queue.submit(request(0.1))
    settled(broken, "failed")
    assert "generation failed: AttributeError" in broken.error
    del model.stream
    job = queue.submit(request(0.1))
    model.release(1)
    settled(job, "done")
    queue.close()
