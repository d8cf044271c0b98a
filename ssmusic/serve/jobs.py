"""The web demo's generation queue: bounded workers, visible places, cancellation, a bounded store.

Requests wait in a FIFO; `concurrency` worker threads take them one at a time and stream each one
(TextToMusic.stream) into a growing PCM buffer that HTTP responses read while it grows, then write
the WAV, its JSON sidecar and a spectrogram and free the buffer. A queued job can be withdrawn; a
running one stops at its next chunk. Every change to a job bumps its `changes`, which the HTTP side
awaits (no polling). `sweep()` cancels jobs nobody follows any more and forgets finished ones after
`keep_seconds` or beyond `max_finished`. Nothing here knows about HTTP.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ssmusic.errors import SsmusicError
from ssmusic.serve.changes import Changes
from ssmusic.serve.outputs import output_paths
from ssmusic.serve.validate import BadRequest, Busy, Request

log = logging.getLogger("ssmusic.serve")


@dataclass
class Job:
    id: str
    request: Request
    total_samples: int  # exactly the requested duration: a 6 s request is 6.000 s of audio
    frames_total: int  # whole codec frames covering it (the last one is trimmed)
    state: str = "queued"  # queued | running | done | failed | cancelled
    error: str | None = None
    pcm: bytearray = field(default_factory=bytearray)  # 16-bit PCM so far; emptied once on disk
    frames_done: int = 0
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    ended: float | None = None
    time_to_first_audio_s: float | None = None
    real_time_factor: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    watchers: int = 0  # open event and audio streams following this job
    last_seen: float = field(default_factory=time.monotonic)  # a client last asked about it
    changes: Changes = field(default_factory=Changes)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def seen(self) -> None:
        self.last_seen = time.monotonic()


class Queue:
    """FIFO of jobs with `concurrency` workers sharing one TextToMusic model.

    max_waiting: requests allowed to wait beyond those running (0: only as many as there are
    workers, i.e. a request is accepted only when a worker is free). unwatched_grace: seconds a
    job may go without anyone following it before sweep() cancels it. rtf: seconds of work per
    second of audio (files included), the estimate behind wait times; it follows finished jobs."""

    def __init__(self, model, outputs: Path, concurrency: int = 1, max_waiting: int = 16,
                 chunk_seconds: float = 0.5, keep_seconds: float = 3600.0, max_finished: int = 100,
                 unwatched_grace: float = 10.0, delete_files: bool = False, rtf: float = 1.0) -> None:
        if concurrency < 1:
            raise SsmusicError(f"--concurrency: expected >= 1, got {concurrency}")
        self.model, self.outputs, self.chunk_seconds = model, outputs, chunk_seconds
        self.concurrency, self.max_waiting = concurrency, max_waiting
        self.keep_seconds, self.max_finished, self.delete_files = keep_seconds, max_finished, delete_files
        self.unwatched_grace, self.rtf = unwatched_grace, rtf
        self.jobs: dict[str, Job] = {}
        self.waiting: deque[Job] = deque()
        self.running: list[Job] = []
        self.lock = threading.Condition()
        self.closed = False
        self.workers = [threading.Thread(target=self._work, daemon=True, name=f"ssmusic-worker-{i}")
                        for i in range(concurrency)]
        for worker in self.workers:
            worker.start()

    def submit(self, request: Request) -> Job:
        sample_rate, frame_rate = self.model.sample_rate, self.model.config.frame_rate
        total = max(1, round(request.seconds * sample_rate))
        frames = math.ceil(total / self.model.codec.samples_per_frame)
        try:
            self.model.check_context(frames, 0)  # a Transformer's context limit: refused before queueing
        except SsmusicError as err:
            raise BadRequest(str(err)) from None
        job = Job(secrets.token_hex(8), request, total, frames)
        with self.lock:
            if self.closed:
                raise Busy("the server is shutting down")
            if len(self.waiting) + len(self.running) >= self.concurrency + self.max_waiting:
                raise Busy(f"the queue is full ({len(self.waiting)} waiting, {len(self.running)} generating); "
                           "try again in a minute")
            self.jobs[job.id] = job
            self.waiting.append(job)
            self.lock.notify()
        log.info("job %s queued: %.1f s, seed %d, %r", job.id, request.seconds, request.sampling.seed,
                 request.prompt[:80])
        return job

    def position(self, job: Job) -> int:
        """1 for the next to start; 0 once running or finished."""
        with self.lock:
            try:
                return self.waiting.index(job) + 1
            except ValueError:
                return 0

    def counts(self) -> dict:
        """How busy the server is and how many jobs it holds (finished ones included)."""
        with self.lock:
            return {"waiting": len(self.waiting), "running": len(self.running), "kept": len(self.jobs),
                    "max_waiting": self.max_waiting, "max_kept_finished": self.max_finished}

    def wait_estimate(self, job: Job) -> float | None:
        """Seconds until `job` starts: the audio still to make ahead of it, at the measured speed."""
        with self.lock:
            if job not in self.waiting:
                return None
            ahead = sum((j.frames_total - j.frames_done) / j.frames_total * j.request.seconds for j in self.running)
            ahead += sum(j.request.seconds for j in self.waiting if j is not job and j.created <= job.created)
        return ahead * self.rtf / self.concurrency

    def cancel(self, job: Job, reason: str = "cancelled") -> None:
        with self.lock:
            if job.finished:
                return
            job.cancel.set()
            job.error = reason
            if job in self.waiting:
                self.waiting.remove(job)
                self._end(job, "cancelled")
                self._moved()

    def sweep(self, now: float | None = None) -> None:
        """Cancel unfinished jobs nobody has followed for `unwatched_grace` seconds (a closed tab, a
        script that submitted and left); forget finished jobs beyond their keeping time or count."""
        now = time.monotonic() if now is None else now
        for job in list(self.jobs.values()):
            if not job.finished and job.watchers == 0 and now - job.last_seen > self.unwatched_grace:
                self.cancel(job, f"nobody followed it for {self.unwatched_grace:g} s")
        with self.lock:
            finished = sorted((j for j in self.jobs.values() if j.finished), key=lambda j: j.ended)
            expired = [j for i, j in enumerate(finished)
                       if now - j.ended > self.keep_seconds or i < len(finished) - self.max_finished]
            for job in expired:
                del self.jobs[job.id]
        for job in expired:
            if self.delete_files:
                for path in output_paths(self.outputs, job.id).values():
                    path.unlink(missing_ok=True)
        if expired:
            log.info("forgot %d finished job(s) (kept %g s, at most %d)", len(expired), self.keep_seconds,
                     self.max_finished)

    def close(self) -> int:
        """Stop: cancel every job (running ones end at their next chunk). Returns how many."""
        with self.lock:
            self.closed = True
            stopped = [job for job in self.jobs.values() if not job.finished]
            for job in stopped:
                job.cancel.set()
                job.error = "the server is shutting down"
            for job in list(self.waiting):
                self._end(job, "cancelled")
            self.waiting.clear()
            self.lock.notify_all()
        for job in stopped:
            job.changes.bump()  # their streams say so now; running ones end at their next chunk
        return len(stopped)

    def join(self, timeout: float) -> bool:
        """Wait for the workers to return (after close()); False if one is still busy."""
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(worker.is_alive() for worker in self.workers)

    def _end(self, job: Job, state: str) -> None:
        """A job's last state (under self.lock): its buffer freed (streams keep their own reference)."""
        job.state, job.ended = state, time.monotonic()
        job.pcm = bytearray()
        if job in self.running:
            self.running.remove(job)
        job.changes.bump()
        took = f" after {job.ended - job.started:.1f} s" if job.started else ""
        log.info("job %s %s%s%s", job.id, state, took, f": {job.error}" if job.error and state != "done" else "")

    def _moved(self) -> None:
        """Places in the queue changed: tell everyone still waiting."""
        for job in self.waiting:
            job.changes.bump()

    def _work(self) -> None:
        while True:
            with self.lock:
                while not self.waiting and not self.closed:
                    self.lock.wait()
                if self.closed:
                    return
                job = self.waiting.popleft()
                job.state, job.started = "running", time.monotonic()
                self.running.append(job)
                self._moved()
                job.changes.bump()
            log.info("job %s started after %.1f s in the queue", job.id, job.started - job.created)
            try:
                state = self._run(job)
            except SsmusicError as err:
                job.error, state = str(err), "failed"
            except Exception as err:  # never let one request take a worker down
                job.error, state = f"generation failed: {type(err).__name__}: {err}"[:300], "failed"
                log.exception("job %s failed", job.id)
            with self.lock:
                self._end(job, state)

    def _run(self, job: Job) -> str:
        from ssmusic.io.wavstream import pcm16
        from ssmusic.serve.outputs import write_outputs

        import torch

        request, pieces = job.request, []
        seconds = job.frames_total / self.model.config.frame_rate  # whole frames; trimmed below
        for chunk in self.model.stream([request.prompt], seconds=seconds, chunk_seconds=self.chunk_seconds,
                                       sampling=request.sampling):
            if job.cancel.is_set():
                return "cancelled"
            room = job.total_samples - len(job.pcm) // 2
            audio = chunk.audio[0, 0, :room]
            job.pcm += pcm16(audio)
            pieces.append(audio)
            job.frames_done = chunk.frames_done
            if job.time_to_first_audio_s is None and audio.numel():
                job.time_to_first_audio_s = time.monotonic() - job.started
            job.changes.bump()
        audio = torch.cat(pieces)
        short = job.total_samples - audio.numel()  # 0 unless a codec decodes fewer samples than its frames
        audio = torch.nn.functional.pad(audio, (0, short))
        job.pcm += bytes(2 * short)
        job.real_time_factor = (time.monotonic() - job.started) / request.seconds
        write_outputs(self.model, job, audio, self.outputs)
        # what a job costs the queue, its files included; recent jobs weigh most
        self.rtf = 0.5 * self.rtf + 0.5 * (time.monotonic() - job.started) / request.seconds
        return "done"
