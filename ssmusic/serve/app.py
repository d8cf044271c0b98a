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
from ssmusic.wavstream import wav_header

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


def build_app(queue: Queue, max_seconds: float) -> Starlette:
    model = queue.model
    defaults = {"cfg": model.config.cfg_scale, "temperature": model.config.temperature,
                "top_k": min(model.config.top_k, model.config.card), "card": model.config.card}  # k >= card: no filter

    def find(request: HTTPRequest) -> Job | None:
        return queue.jobs.get(request.path_params["job_id"])

    async def page(request: HTTPRequest) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def script(request: HTTPRequest) -> Response:
        return FileResponse(STATIC / "app.js", media_type="text/javascript")

    async def info(request: HTTPRequest) -> Response:
        return JSONResponse({"defaults": {k: v for k, v in defaults.items() if k != "card"},
                             "max_seconds": max_seconds, "max_top_k": model.config.card,
                             "sample_rate": model.sample_rate, "model": model.describe()})

    async def generate(request: HTTPRequest) -> Response:
        try:
            body = json.loads(await request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, "the request body must be JSON")
        try:
            job = queue.submit(parse_request(body, defaults, max_seconds))
        except SsmusicError as err:
            return error(503 if "queue is full" in str(err) else 400, str(err))
        return JSONResponse(status_of(queue, job), status_code=202)

    async def status(request: HTTPRequest) -> Response:
        job = find(request)
        return error(404, "no such job") if job is None else JSONResponse(status_of(queue, job))

    async def events(request: HTTPRequest) -> Response:
        job = find(request)
        if job is None:
            return error(404, "no such job")

        async def stream():
            job.watchers += 1
            last = None
            try:
                while True:
                    record = status_of(queue, job)
                    if record != last:
                        yield f"data: {json.dumps(record)}\n\n"
                        last = record
                    if job.finished:
                        return
                    await asyncio.sleep(POLL_SECONDS)
            finally:
                job.watchers -= 1
                if not job.finished and job.watchers == 0:
                    asyncio.get_running_loop().call_later(CANCEL_GRACE_SECONDS, abandon, job)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    def abandon(job: Job) -> None:
        if job.watchers == 0 and not job.finished:
            queue.cancel(job)

    async def audio(request: HTTPRequest) -> Response:
        job = find(request)
        if job is None:
            return error(404, "no such job")
        if job.state == "done":
            return FileResponse(output_paths(queue.outputs, job.id)["wav"], media_type="audio/wav")
        if job.state in ("failed", "cancelled"):
            return error(409, f"this generation {job.state}" + (f": {job.error}" if job.error else ""))
        total = 2 * job.total_samples

        async def stream():
            yield wav_header(model.sample_rate, total)
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

    async def file(request: HTTPRequest) -> Response:
        job = find(request)
        kind = request.path_params["kind"]
        if job is None or kind not in ("wav", "json", "png"):
            return error(404, "no such file")
        if job.state != "done":
            return error(409, f"not finished (state: {job.state})")
        media = {"wav": "audio/wav", "json": "application/json", "png": "image/png"}[kind]
        return FileResponse(output_paths(queue.outputs, job.id)[kind], media_type=media,
                            filename=f"ssmusic-{job.id}.{kind}")

    async def cancel(request: HTTPRequest) -> Response:
        job = find(request)
        if job is None:
            return error(404, "no such job")
        queue.cancel(job)
        return JSONResponse(status_of(queue, job))

    async def failure(request: HTTPRequest, exc: Exception) -> Response:
        return error(500, f"internal error: {type(exc).__name__}")

    routes = [Route("/", page), Route("/app.js", script), Route("/api/info", info),
              Route("/api/generate", generate, methods=["POST"]), Route("/api/jobs/{job_id}", status),
              Route("/api/jobs/{job_id}/events", events), Route("/api/jobs/{job_id}/audio.wav", audio),
              Route("/api/jobs/{job_id}/cancel", cancel, methods=["POST"]),
              Route("/api/jobs/{job_id}/{kind}", file)]
    return Starlette(routes=routes, exception_handlers={Exception: failure})
