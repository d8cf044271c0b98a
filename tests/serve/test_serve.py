"""The web demo's API against a real `ssmusic serve` process (tiny random-weight model)."""

import io
import json
import urllib.request

import pytest
import soundfile

from serve_helpers import call, post, running_server, wait_for

pytest.importorskip("starlette", reason="the web demo needs the demo extra: pip install -e '.[demo]'")
pytest.importorskip("uvicorn", reason="the web demo needs the demo extra: pip install -e '.[demo]'")


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    outputs = tmp_path_factory.mktemp("serve_api")
    with running_server(tiny_model_dir, outputs, "--max-seconds", "600", "--max-queue", "2") as url:
        yield url


def finished(url, job_id):
    status = call(f"{url}/api/jobs/{job_id}")[1]
    return status if status["state"] in ("done", "failed", "cancelled") else None


@pytest.mark.parametrize("body,message", [
    ({"prompt": ""}, "prompt: describe the music"), ({"prompt": "   "}, "prompt: describe"),
    ({"seconds": 2}, "prompt: describe"), ({"prompt": "x", "seconds": 1e9}, "seconds: expected a number from"),
    ({"prompt": "x", "seconds": -1}, "seconds: expected a number from"), ({"prompt": "x", "seconds": "ten"}, "seconds: expected a number"),
    ({"prompt": "x", "top_k": 2.5}, "top_k: expected a whole number"), ({"prompt": "x", "temperature": 0}, "temperature"),
    ({"prompt": "x", "cfg": True}, "cfg: expected a number"), ({"prompt": "x", "seed": -4}, "seed"),
    ({"prompt": "x", "volume": 11}, "unknown field(s): volume"), ([1, 2], "must be a JSON object"),
    ({"prompt": "x" * 501}, "at most 500 characters")])
def test_bad_requests_get_a_clear_400(server, body, message):
    status, reply = post(server, body)
    assert status == 400 and message in reply["error"]


def test_malformed_requests_do_not_crash_the_server(server):
    assert call(server + "/api/generate", b"{not json")[0] == 400
    assert call(server + "/api/generate", b"\xff\xfe")[0] == 400
    assert call(server + "/api/jobs/nope")[0] == 404
    assert call(server + "/api/jobs/nope/audio.wav")[0] == 404
    assert call(server + "/api/generate")[0] == 405  # GET on a POST route
    status, info = call(server + "/api/info")
    assert status == 200 and info["defaults"]["top_k"] > 0 and info["max_seconds"] == 600


def test_a_generation_streams_then_leaves_wav_sidecar_and_spectrogram(server):
    status, job = post(server, {"prompt": "a tone at 330 Hz", "seconds": 1.0, "seed": 4})
    assert status == 202 and job["state"] in ("queued", "running") and job["frames_total"] == 43
    with urllib.request.urlopen(f"{server}/api/jobs/{job['id']}/audio.wav", timeout=60) as response:
        streamed = response.read()  # arrives while generating; complete once generation ends
    done = wait_for(lambda: finished(server, job["id"]))
    assert done["state"] == "done" and done["time_to_first_audio_s"] > 0
    wav = call(f"{server}/api/jobs/{job['id']}/wav")[1]
    assert streamed == wav  # the live stream is the final file, byte for byte
    data, rate = soundfile.read(io.BytesIO(wav))
    assert rate == 22050 and len(data) == 43 * 512
    sidecar = call(f"{server}/api/jobs/{job['id']}/json")[1]
    assert sidecar["prompt"] == "a tone at 330 Hz" and sidecar["seed"] == 4
    assert call(f"{server}/api/jobs/{job['id']}/png")[1][:8] == b"\x89PNG\r\n\x1a\n"
    assert call(f"{server}/api/jobs/{job['id']}/exe")[0] == 404


def test_queue_places_cancellation_and_a_closed_event_stream(server):
    long = post(server, {"prompt": "a very long tone", "seconds": 600})[1]
    wait_for(lambda: call(f"{server}/api/jobs/{long['id']}")[1]["state"] == "running")
    queued = post(server, {"prompt": "next in line", "seconds": 0.5, "seed": 1})[1]
    assert queued["state"] == "queued" and queued["position"] == 1
    withdrawn = post(server, {"prompt": "changed my mind", "seconds": 0.5})[1]
    assert withdrawn["position"] == 2
    assert post(server, {"prompt": "one too many", "seconds": 0.5})[0] == 503  # --max-queue 2
    assert call(f"{server}/api/jobs/{withdrawn['id']}/cancel", b"")[1]["state"] == "cancelled"
    assert call(f"{server}/api/jobs/{queued['id']}")[1]["position"] == 1
    # a visitor following the long job closes the tab: its event stream ends, the slot frees
    with urllib.request.urlopen(f"{server}/api/jobs/{long['id']}/events", timeout=60) as events:
        first = json.loads(events.readline().decode().removeprefix("data: "))
        assert first["state"] == "running"
    assert wait_for(lambda: finished(server, long["id"]))["state"] == "cancelled"
    assert wait_for(lambda: finished(server, queued["id"]))["state"] == "done"
    assert call(f"{server}/api/jobs/{long['id']}/wav")[0] == 409
