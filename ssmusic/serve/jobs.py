"""The web demo's generation queue: bounded workers, visible places, cancellation.

Requests wait in a FIFO; `concurrency` worker threads take them one at a time and stream each one
(TextToMusic.stream) into a growing PCM buffer that HTTP responses read while it grows, then write
the WAV, its JSON sidecar and a spectrogram. A queued job can be withdrawn; a running one stops at
its next chunk. Nothing here knows about HTTP.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ssmusic.errors import SsmusicError

MAX_PROMPT_CHARS = 500


@dataclass(frozen=True)
class Request:
    prompt: str
    seconds: float
    cfg: float
    temperature: float
    top_k: int
    seed: int


def _number(body: dict, name: str, default, low: float, high: float, integer: bool = False):
    value = body.get(name, default)
    if value is None or value == "":
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SsmusicError(f"{name}: expected a number, got {value!r}"[:200])
    if integer and value != int(value):
        raise SsmusicError(f"{name}: expected a whole number, got {value}")
    if not math.isfinite(value) or not low <= value <= high:
        raise SsmusicError(f"{name}: expected a number from {low:g} to {high:g}, got {value}")
    return int(value) if integer else float(value)


def parse_request(body, defaults: dict, max_seconds: float) -> Request:
    """A JSON body -> Request, or SsmusicError with a one-line reason (the API answers 400)."""
    if not isinstance(body, dict):
        raise SsmusicError("the request body must be a JSON object")
    unknown = sorted(set(body) - {"prompt", "seconds", "cfg", "temperature", "top_k", "seed"})
    if unknown:
        raise SsmusicError(f"unknown field(s): {', '.join(map(str, unknown))}"[:200])
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise SsmusicError("prompt: describe the music to generate (it is empty)")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise SsmusicError(f"prompt: at most {MAX_PROMPT_CHARS} characters, got {len(prompt)}")
    seed = body.get("seed")
    return Request(
        prompt=prompt.strip(),
        seconds=_number(body, "seconds", min(10.0, max_seconds), 0.1, max_seconds),
        cfg=_number(body, "cfg", defaults["cfg"], 0.0, 20.0),
        temperature=_number(body, "temperature", defaults["temperature"], 0.05, 5.0),
        top_k=_number(body, "top_k", defaults["top_k"], 0, defaults["card"], integer=True),
        seed=secrets.randbelow(2**31) if seed in (None, "") else _number(body, "seed", 0, 0, 2**31 - 1, integer=True))


@dataclass
class Job:
    id: str
    request: Request
    total_samples: int
    state: str = "queued"  # queued | running | done | failed | cancelled
    error: str | None = None
    pcm: bytearray = field(default_factory=bytearray)  # 16-bit PCM so far
    frames_done: int = 0
    frames_total: int = 0
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    time_to_first_audio_s: float | None = None
    real_time_factor: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    watchers: int = 0  # open event streams (browser tabs) following this job

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")


class Queue:
    """FIFO of jobs with `concurrency` workers sharing one TextToMusic model."""

    def __init__(self, model, outputs: Path, concurrency: int = 1, max_waiting: int = 16,
                 chunk_seconds: float = 0.5) -> None:
        if concurrency < 1:
            raise SsmusicError(f"--concurrency: expected >= 1, got {concurrency}")
        self.model, self.outputs, self.chunk_seconds = model, outputs, chunk_seconds
        self.max_waiting = max_waiting
        self.jobs: dict[str, Job] = {}
        self.waiting: deque[Job] = deque()
        self.lock = threading.Condition()
        self.closed = False
        self.workers = [threading.Thread(target=self._work, daemon=True, name=f"ssmusic-worker-{i}")
                        for i in range(concurrency)]
        for worker in self.workers:
            worker.start()

    def submit(self, request: Request) -> Job:
        steps = max(1, round(request.seconds * self.model.config.frame_rate))
        self.model.check_context(steps, 0)  # a Transformer's context limit: refused before queueing
        job = Job(secrets.token_hex(8), request, steps * self.model.codec.samples_per_frame, frames_total=steps)
        with self.lock:
            if len(self.waiting) >= self.max_waiting:
                raise SsmusicError(f"the queue is full ({self.max_waiting} waiting); try again in a minute")
            self.jobs[job.id] = job
            self.waiting.append(job)
            self.lock.notify()
        return job

    def position(self, job: Job) -> int:
        """1 for the next to start; 0 once running or finished."""
        with self.lock:
            try:
                return self.waiting.index(job) + 1
            except ValueError:
                return 0

    def cancel(self, job: Job) -> None:
        with self.lock:
            job.cancel.set()
            if job in self.waiting:
                self.waiting.remove(job)
                job.state = "cancelled"

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for job in list(self.waiting):
                job.state = "cancelled"
            self.waiting.clear()
            self.lock.notify_all()
            for job in self.jobs.values():
                job.cancel.set()

    def _work(self) -> None:
        while True:
            with self.lock:
                while not self.waiting and not self.closed:
                    self.lock.wait()
                if self.closed:
                    return
                job = self.waiting.popleft()
                job.state, job.started = "running", time.monotonic()
            try:
                self._run(job)
            except SsmusicError as err:
                job.error, job.state = str(err), "failed"
            except Exception as err:  # never let one request take a worker down
                job.error, job.state = f"generation failed: {type(err).__name__}: {err}"[:300], "failed"

    def _run(self, job: Job) -> None:
        from ssmusic.serve.outputs import write_outputs
        from ssmusic.io.wavstream import pcm16

        request = job.request
        pieces = []
        for chunk in self.model.stream([request.prompt], seconds=request.seconds, chunk_seconds=self.chunk_seconds,
                                       cfg_scale=request.cfg, temperature=request.temperature, top_k=request.top_k,
                                       seed=request.seed):
            if job.cancel.is_set():
                job.state = "cancelled"
                return
            audio = chunk.audio[0, 0]
            room = job.total_samples - len(job.pcm) // 2
            job.pcm += pcm16(audio[:room])
            pieces.append(audio)
            job.frames_done = chunk.frames_done
            if job.time_to_first_audio_s is None and audio.numel():
                job.time_to_first_audio_s = time.monotonic() - job.started
        missing = job.total_samples - len(job.pcm) // 2
        job.pcm += bytes(2 * max(0, missing))
        audio = torch.cat(pieces)[: job.total_samples]
        job.real_time_factor = (time.monotonic() - job.started) / (job.total_samples / self.model.sample_rate)
        write_outputs(self.model, job, audio, self.outputs)
        job.state = "done"
