"""Time to first audio in the browser: `ssmusic serve` with a model, driven by headless Chromium.

    python benchmarks/browser_ttfa.py [--checkpoint DIR] [--seconds 10] [--runs 3]
        [--out results/browser_ttfa.json] [--screenshot docs/serve.png]

Each run loads the page, types a prompt, sets the duration and presses Generate; the page records
the time from the click until its first piece of audio is scheduled to sound (Web Audio, 0.1 s
scheduling margin included). The server's own time from the start of generation to the first
chunk is recorded beside it. The last page is saved as the screenshot in docs/generation.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))
from serve_helpers import call, running_server, wait_for  # noqa: E402
from test_serve_browser import browser, page_state, request_music  # noqa: E402

PROMPTS = ["a lively jig on the violin", "a slow Bach chorale sung by a choir", "a calm harpsichord piece"]


def one_run(driver, url: str, prompt: str, seconds: float) -> dict:
    request_music(driver, url, prompt, seconds)
    playing = wait_for(lambda: (s := page_state(driver))["first"] and s, timeout=600)
    state = wait_for(lambda: (s := page_state(driver))["status"].startswith("Done") and s["duration"] and s,
                     timeout=600)
    job_id = state["src"].split("/")[3]
    server = call(f"{url}/api/jobs/{job_id}")[1]
    return {"prompt": prompt, "page_time_to_first_audio_s": float(playing["first"]),
            "status_when_playing_started": playing["status"],
            "server_time_to_first_chunk_s": server["time_to_first_audio_s"],
            "server_real_time_factor": server["real_time_factor"], "audio_element_duration_s": state["duration"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "browser_ttfa.json")
    parser.add_argument("--screenshot", type=Path, default=ROOT / "docs" / "serve.png")
    args = parser.parse_args()
    from ssmusic.pipeline import DEFAULT_MODEL_DIR

    checkpoint = args.checkpoint or DEFAULT_MODEL_DIR
    load_before = os.getloadavg()  # other work on the machine, beside the figure it slows
    with tempfile.TemporaryDirectory() as outputs, running_server(checkpoint, Path(outputs)) as url:
        driver = browser()
        try:
            runs = [one_run(driver, url, PROMPTS[i % len(PROMPTS)], args.seconds) for i in range(args.runs)]
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(str(args.screenshot))
        finally:
            driver.quit()
    results = {"command": "python " + " ".join(sys.argv), "checkpoint": str(checkpoint), "seconds": args.seconds,
               "server_flags": "--threads 1 (one torch thread, as the tests run it)",
               "cpu_count": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
               "runs": runs,
               "median_page_time_to_first_audio_s": statistics.median(r["page_time_to_first_audio_s"] for r in runs),
               "median_server_time_to_first_chunk_s": statistics.median(r["server_time_to_first_chunk_s"] for r in runs)}
    from ssmusic.config import write_json_atomic

    write_json_atomic(args.out, results)
    print(results["median_page_time_to_first_audio_s"], results["median_server_time_to_first_chunk_s"])


if __name__ == "__main__":
    main()
