"""The web demo's HTTP side: one page and a small JSON API (Starlette, served by uvicorn).

    GET  /                          the page (static/index.html, its scripts and style)
    GET  /api/info                  the model, its card (examples, what it knows), defaults, limits
    POST /api/generate              {prompt, seconds, cfg, temperature, top_k, seed} -> 202 {id, position, ...}
    GET  /api/jobs/{id}             status: state, place in the queue, estimated wait, frames done
    GET  /api/jobs/{id}/events      the same as server-sent events, sent when it changes
    GET  /api/jobs/{id}/audio.wav   16-bit WAV, streamed while it is generated (its header already
                                    holds the final length); it ends early if the job is cancelled
    GET  /api/jobs/{id}/{wav,json,png} the finished files
    POST /api/jobs/{id}/cancel      withdraw a request

A job nobody follows (no open events or audio stream, no status request) for the queue's
unwatched grace is cancelled: longer than a browser's EventSource reconnect, announced in `retry:`.
Refusals are {"error": "one line"} with the status of their type (ssmusic.serve.validate).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Callable

from starlette.applications import Starlette
from starlette.requests import Request as HTTPRequest
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ssmusic.io.wavstream import wav_header
from ssmusic.serve.card import read_model_card
from ssmusic.serve.guard import AccessLog, HostGuard
from ssmusic.serve.jobs import Job, Queue
from ssmusic.serve.outputs import output_paths, public_description
from ssmusic.serve.validate import (MAX_BODY_BYTES, MAX_PROMPT_CHARS, HttpError, NotFound, check_json_type,
                                    parse_json, parse_request, read_body)

STATIC = Path(__file__).parent / "static"
MEDIA = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
RETRY_MS = 1000  # EventSource reconnects after this (Chromium's own default is 3 s)
HEARTBEAT_S = 15.0  # an idle event stream sends a comment this often (proxies, dead peers)
SWEEP_S = 1.0
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def status_of(queue: Queue, job: Job) -> dict:
    record = {"id": job.id, "state": job.state, "position": queue.position(job), "wait_s": queue.wait_estimate(job),
              "prompt": job.request.prompt, "seconds": job.request.seconds,
              "duration_s": job.total_samples / queue.model.sample_rate, "frames_done": job.frames_done,
              "frames_total": job.frames_total, "seed": job.request.sampling.seed, "error": job.error,
              "time_to_first_audio_s": job.time_to_first_audio_s, "real_time_factor": job.real_time_factor}
    if job.state == "done":
        record["files"] = {kind: f"/api/jobs/{job.id}/{kind}" for kind in ("wav", "json", "png")}
    return record


class DemoApi:
    """The page's routes over one generation queue (one method per route)."""

    def __init__(self, queue: Queue, max_seconds: float, on_start: Callable[[], None] | None = None) -> None:
        self.queue, self.model, self.max_seconds, self.on_start = queue, queue.model, max_seconds, on_start
        config = self.model.config
        # top-k >= card means no filter: the form never offers more than the card
        self.defaults = {"cfg": config.cfg_scale, "temperature": config.temperature,
                         "top_k": min(config.top_k, config.card)}
        self.card = read_model_card(self.model.model_dir)
        self.static = {path.name: path for path in STATIC.iterdir() if path.suffix in MEDIA}

    def find(self, request: HTTPRequest) -> Job:
        job = self.queue.jobs.get(request.path_params["job_id"])
        if job is None:
            raise NotFound(f"no such job (finished jobs are kept {self.queue.keep_seconds / 60:g} min, "
                           f"the last {self.queue.max_finished} of them)")
        job.seen()
        return job

    async def page(self, request: HTTPRequest) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    async def asset(self, request: HTTPRequest) -> Response:
        path = self.static.get(request.path_params["name"])
        if path is None:
            return error(404, "no such file")
        return FileResponse(path, media_type=MEDIA[path.suffix], headers={"X-Content-Type-Options": "nosniff"})

    async def info(self, request: HTTPRequest) -> Response:
        return JSONResponse({"defaults": self.defaults, "max_seconds": self.max_seconds,
                             "max_top_k": self.model.config.card, "max_prompt_chars": MAX_PROMPT_CHARS,
                             "sample_rate": self.model.sample_rate, "model": public_description(self.model),
                             "card": self.card, "retry_ms": RETRY_MS,
                             "unwatched_grace_s": self.queue.unwatched_grace, "queue": self.queue.counts()})

    async def generate(self, request: HTTPRequest) -> Response:
        check_json_type(request.headers.get("content-type"))
        body = await read_body(request.stream(), request.headers.get("content-length"), MAX_BODY_BYTES)
        job = self.queue.submit(parse_request(parse_json(body), self.defaults, self.max_seconds))
        return JSONResponse(status_of(self.queue, job), status_code=202)

    async def status(self, request: HTTPRequest) -> Response:
        return JSONResponse(status_of(self.queue, self.find(request)))

    async def events(self, request: HTTPRequest) -> Response:
        job = self.find(request)

        async def stream():
            job.watchers += 1
            version, last = -1, None
            try:
                yield f"retry: {RETRY_MS}\n\n"
                while True:
                    # read before the record: a job that ends while the record is being sent is
                    # looked at once more, so the last record sent is always its final state
                    finished = job.finished
                    record = status_of(self.queue, job)
                    if record != last:
                        yield f"data: {json.dumps(record)}\n\n"
                        last = record
                    if finished:
                        return
                    seen, version = version, await job.changes.wait(version, HEARTBEAT_S)
                    if version == seen:
                        yield ": still here\n\n"
            finally:
                job.watchers -= 1
                job.seen()  # the grace runs from here: a reconnecting page picks the job up again

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def audio(self, request: HTTPRequest) -> Response:
        job = self.find(request)
        if job.state == "done":
            return FileResponse(output_paths(self.queue.outputs, job.id)["wav"], media_type="audio/wav")
        if job.finished:
            return error(409, f"this generation {job.state}" + (f": {job.error}" if job.error else ""))
        pcm, total = job.pcm, 2 * job.total_samples  # this stream's reference: the job frees its own when done

        async def stream():
            job.watchers += 1
            sent, version = 0, -1
            try:
                yield wav_header(self.model.sample_rate, total)
                while sent < total:
                    available = len(pcm)
                    if available > sent:
                        yield bytes(pcm[sent:available])
                        sent = available
                    elif job.state in ("failed", "cancelled") or job.cancel.is_set():
                        return  # ends short: no silence is streamed after a cancel
                    else:
                        version = await job.changes.wait(version, HEARTBEAT_S)
            finally:
                job.watchers -= 1
                job.seen()

        return StreamingResponse(stream(), media_type="audio/wav", headers={"Cache-Control": "no-store"})

    async def file(self, request: HTTPRequest) -> Response:
        job, kind = self.find(request), request.path_params["kind"]
        if kind not in ("wav", "json", "png"):
            return error(404, "no such file")
        if job.state != "done":
            return error(409, f"not finished (state: {job.state})")
        media = {"wav": "audio/wav", "json": "application/json", "png": "image/png"}[kind]
        return FileResponse(output_paths(self.queue.outputs, job.id)[kind], media_type=media,
                            filename=f"ssmusic-{job.id}.{kind}")

    async def cancel(self, request: HTTPRequest) -> Response:
        job = self.find(request)
        self.queue.cancel(job, "cancelled by its visitor")
        return JSONResponse(status_of(self.queue, job))

    async def refused(self, request: HTTPRequest, exc: HttpError) -> Response:
        headers = {"Retry-After": "30"} if exc.status == 503 else None
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)

    async def failure(self, request: HTTPRequest, exc: Exception) -> Response:
        return error(500, f"internal error: {type(exc).__name__}")

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette):
        async def sweep() -> None:
            while True:
                await asyncio.sleep(SWEEP_S)
                self.queue.sweep()

        task = asyncio.create_task(sweep())
        if self.on_start is not None:
            self.on_start()
        try:
            yield
        finally:
            task.cancel()


def build_app(queue: Queue, max_seconds: float, bind_host: str = "127.0.0.1", allow_hosts: tuple[str, ...] = (),
              access_log: bool = True, on_start: Callable[[], None] | None = None):
    """The ASGI app: routes behind the Host/Origin guard, and (optionally) the access log around all.
    `on_start` runs once the app has started (the server says where it listens)."""
    api = DemoApi(queue, max_seconds, on_start)
    routes = [Route("/", api.page), Route("/static/{name}", api.asset), Route("/api/info", api.info),
              Route("/api/generate", api.generate, methods=["POST"]), Route("/api/jobs/{job_id}", api.status),
              Route("/api/jobs/{job_id}/events", api.events), Route("/api/jobs/{job_id}/audio.wav", api.audio),
              Route("/api/jobs/{job_id}/cancel", api.cancel, methods=["POST"]),
              Route("/api/jobs/{job_id}/{kind}", api.file)]
    app = Starlette(routes=routes, lifespan=api.lifespan,
                    exception_handlers={HttpError: api.refused, Exception: api.failure})
    guarded = HostGuard(app, bind_host, allow_hosts)
    return AccessLog(guarded) if access_log else guarded
