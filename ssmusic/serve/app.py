"""The web demo's HTTP side: one page and a small JSON API (Starlette, served by uvicorn).

    GET  /                          the page (static/index.html + static/app.js)
    GET  /api/info                  the model and the form's defaults and limits
    POST /api/generate              {prompt, seconds, cfg, temperature, top_k, seed} -> {id, position}
    GET  /api/jobs/{id}             status: state, place in the queue, frames done
    GET  /api/jobs/{id}/events      the same as server-sent events; closing it (the tab) frees the slot
    GET  /api/jobs/{id}/audio.wav   16-bit WAV, streamed while it is generated (its header already
                                    holds the final length, so the player knows the duration)
    GET  /api/jobs/{id}/{wav,json,png} the finished files
    POST /api/jobs/{id}/cancel      withdraw a request

Bad requests get 4xx with {"error": "one line"}; nothing a client sends stops the server.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request as HTTPRequest
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ssmusic.errors import SsmusicError
from ssmusic.serve.jobs import Job, Queue, parse_request
from ssmusic.serve.outputs import output_paths
from ssmusic.io.wavstream import wav_header

STATIC = Path(__file__).parent / "static"
POLL_SECONDS = 0.05
CANCEL_GRACE_SECONDS = 2.0  # an event stream may drop and reconnect; a closed tab does not


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def status_of(queue: Queue, job: Job) -> dict:
    record = {"id": job.id, "state": job.state, "position": queue.position(job), "prompt": job.request.prompt,
              "seconds": job.total_samples / queue.model.sample_rate, "frames_done": job.frames_done,
              "frames_total": job.frames_total, "seed": job.request.seed, "error": job.error,
              "time_to_first_audio_s": job.time_to_first_audio_s, "real_time_factor": job.real_time_factor}
    if job.state == "done":
        record["files"] = {kind: f"/api/jobs/{job.id}/{kind}" for kind in ("wav", "json", "png")}
    return record


class DemoApi:
    """The page's routes over one generation queue (one method per route)."""

    def __init__(self, queue: Queue, max_seconds: float) -> None:
        self.queue, self.model, self.max_seconds = queue, queue.model, max_seconds
        config = self.model.config
        # top-k >= card means no filter: the form never offers more than the card
        self.defaults = {"cfg": config.cfg_scale, "temperature": config.temperature,
                         "top_k": min(config.top_k, config.card), "card": config.card}

    def find(self, request: HTTPRequest) -> Job | None:
        return self.queue.jobs.get(request.path_params["job_id"])

    async def page(self, request: HTTPRequest) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def script(self, request: HTTPRequest) -> Response:
        return FileResponse(STATIC / "app.js", media_type="text/javascript")

    async def info(self, request: HTTPRequest) -> Response:
        return JSONResponse({"defaults": {k: v for k, v in self.defaults.items() if k != "card"},
                             "max_seconds": self.max_seconds, "max_top_k": self.model.config.card,
                             "sample_rate": self.model.sample_rate, "model": self.model.describe()})

    async def generate(self, request: HTTPRequest) -> Response:
        try:
            body = json.loads(await request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, "the request body must be JSON")
        try:
            job = self.queue.submit(parse_request(body, self.defaults, self.max_seconds))
        except SsmusicError as err:
            return error(503 if "queue is full" in str(err) else 400, str(err))
        return JSONResponse(status_of(self.queue, job), status_code=202)

    async def status(self, request: HTTPRequest) -> Response:
        job = self.find(request)
        return error(404, "no such job") if job is None else JSONResponse(status_of(self.queue, job))

    async def events(self, request: HTTPRequest) -> Response:
        job = self.find(request)
        if job is None:
            return error(404, "no such job")

        async def stream():
            job.watchers += 1
            last = None
            try:
                while True:
                    record = status_of(self.queue, job)
                    if record != last:
                        yield f"data: {json.dumps(record)}\n\n"
                        last = record
                    if job.finished:
                        return
                    await asyncio.sleep(POLL_SECONDS)
            finally:
                job.watchers -= 1
                if not job.finished and job.watchers == 0:
                    asyncio.get_running_loop().call_later(CANCEL_GRACE_SECONDS, self.abandon, job)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    def abandon(self, job: Job) -> None:
        if job.watchers == 0 and not job.finished:
            self.queue.cancel(job)

    async def audio(self, request: HTTPRequest) -> Response:
        job = self.find(request)
        if job is None:
            return error(404, "no such job")
        if job.state == "done":
            return FileResponse(output_paths(self.queue.outputs, job.id)["wav"], media_type="audio/wav")
        if job.state in ("failed", "cancelled"):
            return error(409, f"this generation {job.state}" + (f": {job.error}" if job.error else ""))
        total = 2 * job.total_samples

        async def stream():
            yield wav_header(self.model.sample_rate, total)
            sent = 0
            while sent < total:
                available = len(job.pcm)
                if available > sent:
                    yield bytes(job.pcm[sent:available])
                    sent = available
                elif job.state in ("failed", "cancelled"):
                    yield bytes(total - sent)  # complete the promised length with silence
                    return
                else:
                    await asyncio.sleep(POLL_SECONDS)

        headers = {"Content-Length": str(44 + total), "Cache-Control": "no-store"}
        return StreamingResponse(stream(), media_type="audio/wav", headers=headers)

    async def file(self, request: HTTPRequest) -> Response:
        job = self.find(request)
        kind = request.path_params["kind"]
        if job is None or kind not in ("wav", "json", "png"):
            return error(404, "no such file")
        if job.state != "done":
            return error(409, f"not finished (state: {job.state})")
        media = {"wav": "audio/wav", "json": "application/json", "png": "image/png"}[kind]
        return FileResponse(output_paths(self.queue.outputs, job.id)[kind], media_type=media,
                            filename=f"ssmusic-{job.id}.{kind}")

    async def cancel(self, request: HTTPRequest) -> Response:
        job = self.find(request)
        if job is None:
            return error(404, "no such job")
        self.queue.cancel(job)
        return JSONResponse(status_of(self.queue, job))

    async def failure(self, request: HTTPRequest, exc: Exception) -> Response:
        return error(500, f"internal error: {type(exc).__name__}")


def build_app(queue: Queue, max_seconds: float) -> Starlette:
    api = DemoApi(queue, max_seconds)
    routes = [Route("/", api.page), Route("/app.js", api.script), Route("/api/info", api.info),
              Route("/api/generate", api.generate, methods=["POST"]), Route("/api/jobs/{job_id}", api.status),
              Route("/api/jobs/{job_id}/events", api.events), Route("/api/jobs/{job_id}/audio.wav", api.audio),
              Route("/api/jobs/{job_id}/cancel", api.cancel, methods=["POST"]),
              Route("/api/jobs/{job_id}/{kind}", api.file)]
    return Starlette(routes=routes, exception_handlers={Exception: api.failure})
