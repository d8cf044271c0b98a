"""The web demo's API against a real `ssmusic serve` process (tiny random-weight model)."""

import http.client
import io
import json
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import soundfile

from serve_helpers import EXAMPLES, call, clean_log, model_with_card, post, running_server, wait_for

pytest.importorskip("starlette", reason="the web demo needs the demo extra: pip install -e '.[demo]'")
pytest.importorskip("uvicorn", reason="the web demo needs the demo extra: pip install -e '.[demo]'")

GRACE = 6  # --cancel-after: longer than a browser's reconnect (3 s by default, 1 s as this server asks)


@pytest.fixture(scope="module")
def model(tiny_model_dir, tmp_path_factory):
    return model_with_card(tiny_model_dir, tmp_path_factory.mktemp("serve_model"))


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    outputs = tmp_path_factory.mktemp("serve_api")
    with running_server(model, outputs, "--max-seconds", "600", "--max-queue", "2", "--cancel-after", str(GRACE),
                        "--max-connections", "6") as url:
        yield url


def finished(url, job_id):
    status = call(f"{url}/api/jobs/{job_id}")[1]
    return status if status["state"] in ("done", "failed", "cancelled") else None


def raw(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    """POST /api/generate with exactly these bytes and headers (a declared length may lie)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.putrequest("POST", "/api/generate")
    for name, value in {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}.items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    status, reply = response.status, json.loads(response.read())
    connection.close()
    return status, reply


@pytest.mark.parametrize("body,status,message", [
    (b'{"prompt": "x", "seed": 1e400}', 400, "seed: expected an integer"),
    (b'{"prompt": "x", "seed": Infinity}', 400, "seed: expected an integer"),
    (b'{"prompt": "x", "seed": ' + b"7" * 5000 + b"}", 400, "seed: expected an integer"),
    (b'{"prompt": "x", "top_k": NaN}', 400, "top_k: expected an integer"),
    (b"[" * 5000, 400, "nested too deeply"),
    (b"[" * 100_000, 413, "at most 16384 are accepted"),
    (b"{not json", 400, "not valid JSON"), (b"\xff\xfe", 400, "UTF-8"),
    (b'{"prompt": "x", "seconds": 1e9}', 400, "seconds: expected a positive duration up to 600 s"),
    (b'{"prompt": ""}', 400, "prompt: expected a description of the music"),
], ids=["seed-1e400", "seed-Infinity", "seed-5000-digits", "top_k-NaN", "nested-5000", "nested-100000",
        "not-json", "not-utf8", "seconds-1e9", "empty-prompt"])
def test_hostile_bodies_get_a_clear_4xx_never_a_500(server, body, status, message):
    code, reply = raw(server, body)
    assert code == status and message in reply["error"]


def test_size_type_and_method_limits(server):
    code, reply = raw(server, b"{}", {"Content-Length": str(400 * 2**20)})  # refused on the header alone
    assert code == 413
    assert raw(server, b'{"prompt": "x"}', {"Content-Type": "text/plain"})[0] == 415  # a cross-site form's type
    assert call(server + "/api/generate", b'{"prompt": "x"}', headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
    assert call(server + "/api/jobs/nope")[0] == 404
    assert call(server + "/api/jobs/nope/audio.wav")[0] == 404
    assert call(server + "/api/generate")[0] == 405  # GET on a POST route
    assert call(server + "/static/../jobs.py")[0] == 404
    assert call(server + "/api/info")[0] == 200  # none of it hurt the server


def test_other_sites_cannot_use_the_api(server):
    port = urllib.parse.urlsplit(server).port
    status, reply = call(server + "/api/info", headers={"Host": f"attacker.example:{port}"})  # DNS rebinding
    assert status == 403 and "not a name of this server" in reply["error"]
    status, reply = call(server + "/api/generate", b'{"prompt": "x"}', headers={"Origin": "http://attacker.example"})
    assert status == 403 and "cross-origin" in reply["error"]
    status, job = call(server + "/api/generate", b'{"prompt": "own page", "seconds": 0.5}',
                       headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"})
    assert status == 202
    wait_for(lambda: finished(server, job["id"]))


def test_info_shows_the_models_card_but_not_where_it_lives(server, model):
    status, info = call(server + "/api/info")
    assert status == 200 and info["defaults"]["top_k"] > 0 and info["max_seconds"] == 600
    assert info["card"]["examples"] == EXAMPLES and info["card"]["does_not_know"] == ["music"]
    assert info["model"]["name"] == "model" and info["unwatched_grace_s"] == GRACE
    assert info["queue"]["max_waiting"] == 2 and info["queue"]["running"] == 0
    assert str(model) not in json.dumps(info) and str(Path.home()) not in json.dumps(info)


def test_a_generation_streams_then_leaves_wav_sidecar_and_spectrogram(server, model):
    status, job = post(server, {"prompt": "a tone at 330 Hz", "seconds": 1.0, "seed": 4})
    assert status == 202 and job["state"] in ("queued", "running") and job["frames_total"] == 44
    with urllib.request.urlopen(f"{server}/api/jobs/{job['id']}/audio.wav", timeout=60) as response:
        streamed = response.read()  # arrives while generating; complete once generation ends
    done = wait_for(lambda: finished(server, job["id"]))
    assert done["state"] == "done" and done["time_to_first_audio_s"] > 0 and done["duration_s"] == 1.0
    wav = call(f"{server}/api/jobs/{job['id']}/wav")[1]
    assert streamed == wav  # the live stream is the final file, byte for byte
    data, rate = soundfile.read(io.BytesIO(wav))
    assert rate == 22050 and len(data) == 22050  # exactly the second asked for (44 frames of 512, trimmed)
    sidecar = call(f"{server}/api/jobs/{job['id']}/json")[1]
    assert sidecar["prompt"] == "a tone at 330 Hz" and sidecar["seed"] == 4 and str(model) not in json.dumps(sidecar)
    assert sidecar["settings"]["threads"] >= 1 and "cpu_step_kernel" in sidecar["settings"]  # as generate's
    assert call(f"{server}/api/jobs/{job['id']}/png")[1][:8] == b"\x89PNG\r\n\x1a\n"
    assert call(f"{server}/api/jobs/{job['id']}/exe")[0] == 404


def test_queue_places_cancellation_and_a_closed_event_stream(server):
    long = post(server, {"prompt": "a very long tone", "seconds": 600})[1]
    wait_for(lambda: call(f"{server}/api/jobs/{long['id']}")[1]["state"] == "running")
    queued = post(server, {"prompt": "next in line", "seconds": 0.5, "seed": 1})[1]
    assert queued["state"] == "queued" and queued["position"] == 1 and queued["wait_s"] > 0
    following = urllib.request.urlopen(f"{server}/api/jobs/{queued['id']}/events", timeout=60)  # its visitor
    withdrawn = post(server, {"prompt": "changed my mind", "seconds": 0.5})[1]
    assert withdrawn["position"] == 2 and withdrawn["wait_s"] > queued["wait_s"]
    status, full = post(server, {"prompt": "one too many", "seconds": 0.5})
    assert status == 503 and "queue is full" in full["error"]  # 1 generating + --max-queue 2 waiting
    assert call(f"{server}/api/jobs/{withdrawn['id']}/cancel", b"")[1]["state"] == "cancelled"
    assert call(f"{server}/api/jobs/{queued['id']}")[1]["position"] == 1
    # a visitor following the long job closes the tab: its event stream ends, the job is cancelled
    with urllib.request.urlopen(f"{server}/api/jobs/{long['id']}/events", timeout=60) as events:
        assert events.readline() == b"retry: 1000\n"  # reconnect after 1 s, well within the grace
        events.readline()
        first = json.loads(events.readline().decode().removeprefix("data: "))
        assert first["state"] == "running"
    cancelled = wait_for(lambda: finished(server, long["id"]), every=GRACE + 1)  # polling would count as following
    assert cancelled["state"] == "cancelled" and "nobody followed it" in cancelled["error"]
    assert json.loads(following.read().decode().split("data: ")[-1])["state"] == "done"  # it was followed
    assert call(f"{server}/api/jobs/{long['id']}/wav")[0] == 409


def test_a_dropped_stream_that_reconnects_within_the_grace_keeps_its_job(server):
    job = post(server, {"prompt": "keep going", "seconds": 600})[1]
    for _ in range(2):
        with urllib.request.urlopen(f"{server}/api/jobs/{job['id']}/events", timeout=60) as events:
            events.readline()
        time.sleep(3.5)  # a browser's default reconnect delay (3 s), and then some
    with urllib.request.urlopen(f"{server}/api/jobs/{job['id']}/events", timeout=60) as events:
        events.readline()
        events.readline()
        assert json.loads(events.readline().decode().removeprefix("data: "))["state"] == "running"
        call(f"{server}/api/jobs/{job['id']}/cancel", b"")
    assert wait_for(lambda: finished(server, job["id"]))["error"] == "cancelled by its visitor"


def test_a_job_submitted_and_left_is_cancelled_after_the_grace(server):
    job = post(server, {"prompt": "fire and forget", "seconds": 600})[1]
    time.sleep(GRACE + 2.5)  # no events, no audio, no status request
    status = call(f"{server}/api/jobs/{job['id']}")[1]
    assert status["state"] == "cancelled" or status["error"].startswith("nobody followed it")


def test_connections_beyond_the_limit_get_503(server):
    job = post(server, {"prompt": "held open", "seconds": 600})[1]
    streams = [urllib.request.urlopen(f"{server}/api/jobs/{job['id']}/events", timeout=60) for _ in range(6)]
    try:
        for stream in streams:
            stream.readline()
        assert call(server + "/api/info")[0] == 503  # --max-connections 6
    finally:
        for stream in streams:
            stream.close()
    wait_for(lambda: call(server + "/api/info")[0] == 200)
    call(f"{server}/api/jobs/{job['id']}/cancel", b"")


def test_requests_and_jobs_are_logged(server, tmp_path_factory):
    job = post(server, {"prompt": "a logged tune", "seconds": 0.5})[1]
    wait_for(lambda: finished(server, job["id"]))
    log = Path(tmp_path_factory.getbasetemp() / "serve_api0" / "server.log").read_text()
    assert f"job {job['id']} queued: 0.5 s" in log and f"job {job['id']} done after" in log
    assert '"POST /api/generate" 202' in log and '"GET /api/info" 200' in log and clean_log(log)


def test_sigterm_mid_generation_stops_cleanly(model, tmp_path):
    with running_server(model, tmp_path, "--max-seconds", "600", keep_outputs=False) as url:
        outputs = Path(url.banner.split("(outputs in ")[1].split(";")[0])  # its own temporary folder
        job = post(url, {"prompt": "interrupted", "seconds": 600})[1]
        events = urllib.request.urlopen(f"{url}/api/jobs/{job['id']}/events", timeout=60)
        audio = urllib.request.urlopen(f"{url}/api/jobs/{job['id']}/audio.wav", timeout=60)
        wait_for(lambda: call(f"{url}/api/jobs/{job['id']}")[1]["frames_done"] > 0)
        assert outputs.is_dir()
        url.process.send_signal(signal.SIGTERM)
        last = [json.loads(line[6:]) for line in events.read().decode().splitlines() if line.startswith("data: ")][-1]
        streamed = audio.read()
        assert last["state"] == "cancelled" and last["error"] == "the server is shutting down"
        assert 44 < len(streamed) < 44 + 2 * 600 * 22050  # the stream ended; no silence made up the rest
        assert url.process.wait(timeout=60) == 0 and not outputs.exists()
    log = (tmp_path / "server.log").read_text()
    assert "stopping (SIGTERM)" in log and "cancelled 1 unfinished job(s)" in log and clean_log(log)
