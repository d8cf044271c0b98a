"""Time to first audio in the browser, one model behind two web demos: `ssmusic serve` and Gradio.

    pip install gradio        # measurement only: not a dependency of ssmusic
    apt-get install ffmpeg    # Gradio encodes streamed audio output to AAC with it
    python benchmarks/demo_framework_ttfa.py [--checkpoint DIR] [--seconds 6] [--runs 3] [--seed 0]
        [--out results/demo_framework_ttfa.json]
    python benchmarks/demo_framework_ttfa.py --lines-only    # no servers: lines of code and versions
    python benchmarks/demo_framework_ttfa.py --serve-gradio  # only the Gradio demo, to look at it

The Gradio demo is gradio_demo() below: the smallest reasonable equivalent of our page (prompt,
duration, seed, a Generate button, and gr.Audio(streaming=True, autoplay=True) fed the chunks of
TextToMusic.stream). Both demos run at once, each in its own process with one torch thread, the
same model warmed up the same way (ssmusic.serve.server.load_warm_model), the same chunk length.
One headless Chromium alternates between them (serve, gradio, serve, ...; one unrecorded warm-up
run each first). Each run loads the page, types the same prompt, duration and seed, and clicks
Generate; a capture-phase click listener takes the click time, and first audio is, in the page's
own clock (performance.now):
  ssmusic serve  the time its first Web Audio buffer is scheduled to sound
                 (AudioBufferSourceNode.start, wrapped before the click);
  Gradio         the first time a media element is seen playing with currentTime > 0, polled
                 every 10 ms (Gradio plays its HLS stream through hls.js into an <audio>); the
                 'playing' event's time is kept beside it.
Lines of code: non-blank, non-comment lines of gradio_demo + serve_gradio here, against ssmusic/serve/.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))
sys.path.insert(0, str(ROOT))
from serve_helpers import running_process, running_server, wait_for  # noqa: E402

PROMPTS = ["a lively jig on the violin", "a slow Bach chorale sung by a choir", "a calm harpsichord piece"]
CHUNK_SECONDS = 0.5  # `ssmusic serve`'s default --chunk-seconds


# --- the Gradio demo (what its lines of code count) ---
def gradio_demo(model, max_seconds: float = 60.0, chunk_seconds: float = CHUNK_SECONDS):
    import gradio as gr

    from ssmusic.io.wavstream import pcm16, wav_header

    def generate(prompt: str, seconds: float, seed: float):
        for chunk in model.stream([prompt], seconds=seconds, chunk_seconds=chunk_seconds, seed=int(seed)):
            data = pcm16(chunk.audio[0, 0])
            yield wav_header(model.sample_rate, len(data)) + data  # bytes: Gradio's advice for streaming

    with gr.Blocks(title="ssmusic") as demo:
        prompt = gr.Textbox(label="Prompt", elem_id="prompt")
        seconds = gr.Number(10, label="Duration (s)", minimum=0.5, maximum=max_seconds, elem_id="seconds")
        seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="seed")
        button = gr.Button("Generate", elem_id="generate")
        audio = gr.Audio(label="Music", streaming=True, autoplay=True, elem_id="audio")
        button.click(generate, [prompt, seconds, seed], audio)
    return demo


def serve_gradio(checkpoint, port: int, threads: int = 1) -> None:
    import torch

    from ssmusic.serve.server import load_warm_model

    torch.set_num_threads(threads)
    demo = gradio_demo(load_warm_model(checkpoint)[0])  # (model, real-time factor)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    print(f"gradio demo: {demo.local_url}", flush=True)
    demo.block_thread()
# --- end of the Gradio demo ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def code_lines(text: str, comment: str = "#") -> int:
    """Non-blank lines that are not wholly a comment (docstrings count: they are in the file)."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith(comment))


def lines_of_code() -> dict:
    serve = {str(p.relative_to(ROOT)): code_lines(p.read_text(), "//" if p.suffix == ".js" else "#")
             for p in sorted((ROOT / "ssmusic" / "serve").rglob("*")) if p.suffix in (".py", ".js", ".html")}
    gradio = code_lines(inspect.getsource(gradio_demo)) + code_lines(inspect.getsource(serve_gradio))
    return {"gradio_demo_in_this_script": gradio, "ssmusic_serve_total": sum(serve.values()), "ssmusic_serve_files": serve,
            "counted": "non-blank lines that are not wholly a comment (docstrings included)"}


# What both pages get before the click: the click time, and every way audio can start sounding.
PROBE = """
window.ttfa = {click: null, first: null, playing: null, ended: false};
document.addEventListener('click', (e) => {
  if (e.target.closest('button')) Object.assign(window.ttfa, {click: performance.now(), first: null, playing: null});
}, true);
document.addEventListener('playing', () => { if (window.ttfa.playing === null) window.ttfa.playing = performance.now(); }, true);
document.addEventListener('ended', () => { window.ttfa.ended = true; }, true);
const start = AudioBufferSourceNode.prototype.start;
AudioBufferSourceNode.prototype.start = function (when = 0, ...rest) {
  if (window.ttfa.click !== null && window.ttfa.first === null)
    window.ttfa.first = performance.now() + Math.max(0, when - this.context.currentTime) * 1000;
  return start.call(this, when, ...rest);
};
setInterval(() => {
  for (const media of document.querySelectorAll('audio, video'))
    if (window.ttfa.click !== null && window.ttfa.first === null && !media.paused && media.currentTime > 0)
      window.ttfa.first = performance.now();
}, 10);
"""


def probe(driver) -> dict:
    return driver.execute_script(
        "const media = [...document.querySelectorAll('audio, video')].map(m => m.currentTime);"
        "return {...window.ttfa, media, now: performance.now()};")


def set_field(driver, selector: str, value) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.CSS_SELECTOR, selector)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value))


def click_generate(driver, url: str, ready: str, fields: dict) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ready) and driver.find_element(By.CSS_SELECTOR, ready)
             .get_attribute("value"), timeout=60)
    for selector, value in fields.items():
        set_field(driver, selector, value)
    driver.execute_script(PROBE)
    driver.find_element(By.CSS_SELECTOR, "#generate").click()


def one_run(driver, app: str, url: str, prompt: str, seconds: float, seed: int) -> dict:
    if app == "ssmusic_serve":
        click_generate(driver, url, "#top_k", {"#prompt": prompt, "#seconds": seconds, "#seed": seed})
    else:
        click_generate(driver, url, "#seconds input", {"#prompt textarea": prompt, "#seconds input": seconds,
                                                       "#seed input": seed})
    state = wait_for(lambda: (s := probe(driver))["first"] is not None and s["now"] >= s["first"] and s,
                     timeout=600, every=0.02)
    if app == "ssmusic_serve":
        status, played = wait_for(lambda: driver.execute_script(
            "const status = document.getElementById('status').textContent;"
            "return status.startsWith('Done') && [status, Number(document.body.dataset.liveSeconds)]"), timeout=600)
    else:  # the stream ends; its <audio> has played it all
        status, played = "ended", wait_for(lambda: (s := probe(driver))["ended"] and max(s["media"]), timeout=600)
    run = {"app": app, "prompt": prompt, "time_to_first_audio_s": round((state["first"] - state["click"]) / 1000, 3),
           "audio_played_s": round(float(played), 3), "status": status}
    if state["playing"] is not None:
        run["playing_event_s"] = round((state["playing"] - state["click"]) / 1000, 3)
    return run


def summarise(runs: list[dict]) -> dict:
    summary = {}
    for app in sorted({r["app"] for r in runs}):
        times = sorted(r["time_to_first_audio_s"] for r in runs if r["app"] == app)
        summary[app] = {"runs": len(times), "median_s": round(statistics.median(times), 3),
                        "min_s": times[0], "max_s": times[-1]}
    return summary


def versions(driver=None) -> dict:
    import selenium

    try:
        import gradio
        gradio_version = gradio.__version__
    except ImportError:
        gradio_version = None
    found = {"python": platform.python_version(), "selenium": selenium.__version__, "gradio": gradio_version}
    if driver is not None:
        found["chromium"] = driver.capabilities.get("browserVersion")
    return found


def measure(args, stack: ExitStack) -> tuple[list[dict], list[dict], dict]:
    from ssmusic.pipeline import DEFAULT_MODEL_DIR
    from test_serve_browser import browser

    checkpoint = args.checkpoint or DEFAULT_MODEL_DIR
    outputs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    env = {**os.environ, "SSMUSIC_CACHE_DIR": str(outputs / "cache"), "PYTHONUNBUFFERED": "1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    gradio_command = [sys.executable, __file__, "--serve-gradio", "--checkpoint", str(checkpoint),
                      "--port", str(free_port())]
    urls = {"ssmusic_serve": stack.enter_context(running_server(checkpoint, outputs)),
            "gradio": stack.enter_context(running_process(gradio_command, outputs / "gradio.log", env))}
    driver = browser()
    stack.callback(driver.quit)
    warmup = [one_run(driver, app, url, "warm-up", args.seconds, args.seed) for app, url in urls.items()]
    runs = []
    for i in range(args.runs):
        for app, url in urls.items():
            runs.append({"run": i, **one_run(driver, app, url, PROMPTS[i % len(PROMPTS)], args.seconds, args.seed)})
            print(runs[-1], flush=True)
    return warmup, runs, versions(driver)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--runs", type=int, default=3, help="recorded runs of each demo, interleaved")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "demo_framework_ttfa.json")
    parser.add_argument("--lines-only", action="store_true", help="write only lines of code and versions")
    parser.add_argument("--serve-gradio", action="store_true", help="serve the Gradio demo until stopped")
    parser.add_argument("--port", type=int, default=0, help="with --serve-gradio (default: a free one)")
    args = parser.parse_args(argv)
    if args.runs < 1 or not args.seconds > 0:
        parser.error("--runs must be >= 1 and --seconds > 0")
    return args


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.serve_gradio:
        serve_gradio(args.checkpoint, args.port or free_port())
        return None
    results = {"command": " ".join(["python benchmarks/demo_framework_ttfa.py", *(sys.argv[1:] if argv is None else argv)]),
               "lines_of_code": lines_of_code(), "load_average_before": os.getloadavg()}
    if args.lines_only:
        results["versions"] = versions()
    else:
        with ExitStack() as stack:
            warmup, runs, found = measure(args, stack)
        results.update({"versions": found, "seconds": args.seconds, "seed": args.seed, "chunk_seconds": CHUNK_SECONDS,
                        "torch_threads_per_server": 1, "summary": summarise(runs), "runs": runs,
                        "warmup_runs_not_counted": warmup, "load_average_after": os.getloadavg(),
                        "cpu_count": os.cpu_count(), "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")})
    from ssmusic.config import write_json_atomic

    write_json_atomic(args.out, results)
    print(results.get("summary"), results["lines_of_code"]["gradio_demo_in_this_script"],
          results["lines_of_code"]["ssmusic_serve_total"])
    return results


if __name__ == "__main__":
    main()
