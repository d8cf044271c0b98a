"""Load test of `ssmusic serve` on loopback: many clients at once, nothing lost, memory bounded.

    python benchmarks/serve_load.py [--checkpoint DIR] [--clients 20] [--rounds 3] [--seconds 2]
        [--watchers 50] [--pairs 3] [--out results/serve_load.json]
    python benchmarks/serve_load.py --phase watchers --checkout /path/to/older/checkout   # before/after

Load: `clients` threads each make `rounds` requests of `seconds` s one after another, follow each
over its event stream to its end, download its WAV and check it holds exactly the seconds asked
for. A refusal must be a 503 with a message (the queue is full), retried after a second. Nothing is
lost when every accepted job ends "done" and every other answer is such a refusal. The server's RSS
(/proc) is read before, every 0.2 s during, and after; its job store must stay within --keep-jobs,
its temporary outputs folder within three files per kept job, and early jobs must be forgotten (404).

Watchers: the real-time factor of one job generated alone, and with `watchers` idle event streams
open (pages following a job queued behind it), in `pairs` interleaved pairs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "serve"))
from serve_helpers import running_process  # noqa: E402

from ssmusic.io.atomic import write_json_atomic  # noqa: E402

LOAD_FLAGS = ["--max-queue", "8", "--keep-jobs", "16", "--concurrency", "1", "--max-connections", "64"]


class Client:
    """HTTP/1.1 on loopback, one connection per request (as simple clients do)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, object, bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=600)
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, data, {"Content-Type": "application/json"} if data else {})
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        return response.status, response.headers, payload  # headers: case-insensitive

    def follow(self, job_id: str) -> list[tuple[float, dict]]:
        """Every status the event stream sends, with its arrival time, until the job ends."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=600)
        connection.request("GET", f"/api/jobs/{job_id}/events")
        response, seen = connection.getresponse(), []
        while line := response.readline():
            if line.startswith(b"data: "):
                seen.append((time.monotonic(), json.loads(line[6:])))
                if seen[-1][1]["state"] in ("done", "failed", "cancelled"):
                    break
        connection.close()
        return seen


def rss_mb(pid: int) -> dict:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "peak_rss_mb": int(fields["VmHWM"].split()[0]) / 1024}


def one_job(client: Client, seconds: float, sample_rate: int, record: dict) -> None:
    """Submit until accepted (503s retried), follow to the end, check the WAV."""
    for attempt in range(120):
        submitted = time.monotonic()
        status, headers, payload = client.request("POST", "/api/generate", {"prompt": "a lively jig on the violin",
                                                                            "seconds": seconds})
        reply = json.loads(payload)
        if status == 202:
            break
        record["refusals"].append({"status": status, "error": reply.get("error"), "retry_after": headers.get("Retry-After")})
        if status != 503:
            return
        time.sleep(1.0 + random.random())
    else:
        return
    record["id"], record["estimated_wait_s"] = reply["id"], reply["wait_s"] or 0.0  # None: started at once
    seen = record["events"] = client.follow(reply["id"])
    final = seen[-1][1] if seen else {"state": "no events"}
    record["state"] = final["state"]
    started = next((t for t, s in seen if s["state"] != "queued"), None)
    record["queue_wait_s"] = None if started is None else started - submitted
    record["latency_s"] = seen[-1][0] - submitted if seen else None
    record["real_time_factor"] = final.get("real_time_factor")
    if final["state"] == "done":
        status, _, wav = client.request("GET", f"/api/jobs/{reply['id']}/wav")
        record["wav_ok"] = status == 200 and len(wav) - 44 == 2 * round(seconds * sample_rate)


def load_phase(url: str, pid: int, outputs: Path, args) -> dict:
    """`rounds` waves of `clients` requests at once; RSS and the store's size after each wave."""
    client = Client(url)
    info = json.loads(client.request("GET", "/api/info")[2])
    before = rss_mb(pid)
    samples, stop, waves = [], threading.Event(), []

    def sample() -> None:
        while not stop.wait(0.2):
            samples.append(rss_mb(pid)["rss_mb"])

    threading.Thread(target=sample, daemon=True).start()
    jobs, start = [], time.monotonic()
    for _ in range(args.rounds):
        wave = [{"refusals": []} for _ in range(args.clients)]
        threads = [threading.Thread(target=one_job, args=(Client(url), args.seconds, info["sample_rate"], record))
                   for record in wave]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(2.5)  # the store's sweep runs every second
        jobs += wave
        waves.append({"rss_mb": rss_mb(pid)["rss_mb"], "store": json.loads(client.request("GET", "/api/info")[2])["queue"],
                      "files_in_outputs": len(list(outputs.glob("*.*")))})
    took = time.monotonic() - start - 2.5 * args.rounds
    stop.set()
    first = jobs[0].get("id")
    forgotten = first is not None and client.request("GET", f"/api/jobs/{first}")[0] == 404
    return summarize(jobs, args, took, before, waves, max(samples, default=None), forgotten)


def summarize(jobs, args, took, before, waves, peak, forgotten: bool) -> dict:
    refusals = [r for job in jobs for r in job["refusals"]]
    done = [j for j in jobs if j.get("state") == "done"]
    accepted = [j for j in jobs if "id" in j]
    waits = [(j["estimated_wait_s"], j["queue_wait_s"]) for j in accepted if j["queue_wait_s"] is not None]
    latencies = sorted(j["latency_s"] for j in done)
    return {
        "requests": len(jobs), "accepted": len(accepted), "done": len(done),
        "lost": len(accepted) - len(done), "wav_exact_length": sum(bool(j.get("wav_ok")) for j in done),
        "refused_503": sum(r["status"] == 503 for r in refusals),
        "refused_other": [r for r in refusals if r["status"] != 503],
        "refusal_messages": sorted({r["error"].split(" (")[0] for r in refusals if r.get("error")}),
        "refusals_with_retry_after": sum(r["retry_after"] is not None for r in refusals),
        "wall_s": took, "audio_s": len(done) * args.seconds,
        "latency_s": {"median": statistics.median(latencies), "p95": latencies[int(0.95 * (len(latencies) - 1))],
                      "max": latencies[-1]} if latencies else None,
        "queue_wait_estimate": {"n": len(waits), "mean_abs_error_s": statistics.mean(abs(e - a) for e, a in waits)
                                if waits else None, "mean_actual_s": statistics.mean(a for _, a in waits) if waits else None},
        "real_time_factor_mean": statistics.mean(j["real_time_factor"] for j in done) if done else None,
        "server_rss_mb": {"before": before["rss_mb"], "peak_during": peak,
                          "after_each_round": [wave["rss_mb"] for wave in waves]},
        "store_after_each_round": [wave["store"] for wave in waves],
        "files_in_outputs_after_each_round": [wave["files_in_outputs"] for wave in waves],
        "first_job_forgotten": forgotten,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watchers_phase(url: str, pid: int, args) -> dict:
    """One job's real-time factor and the server's CPU time alone and with idle followers (pages
    holding an event stream, and with --watch-audio an audio stream too, of a job queued behind it),
    interleaved."""
    client = Client(url)
    label = f"with_{args.watchers}_watchers"
    runs = {"alone": {"real_time_factors": [], "cpu_s": []}, label: {"real_time_factors": [], "cpu_s": []}}
    paths = ["events", "audio.wav"] if args.watch_audio else ["events"]
    for pair in range(args.pairs):
        for name, count in (("alone", 0), (label, args.watchers)):
            measured = json.loads(client.request("POST", "/api/generate", {"prompt": "a slow chorale on a church organ",
                                                                           "seconds": args.watch_seconds, "seed": pair})[2])
            behind = json.loads(client.request("POST", "/api/generate", {"prompt": "waits", "seconds": 0.5})[2])
            idle = []
            for index in range(count):
                connection = http.client.HTTPConnection(client.host, client.port, timeout=600)
                connection.request("GET", f"/api/jobs/{behind['id']}/{paths[index % len(paths)]}")
                idle.append((connection, connection.getresponse()))
            cpu = cpu_seconds(pid)
            seen = client.follow(measured["id"])
            runs[name]["cpu_s"].append(cpu_seconds(pid) - cpu)
            for connection, _ in idle:
                connection.close()
            client.request("POST", f"/api/jobs/{behind['id']}/cancel", {})
            runs[name]["real_time_factors"].append(seen[-1][1]["real_time_factor"])
    for run in runs.values():
        run["mean_real_time_factor"] = statistics.mean(run["real_time_factors"])
        run["mean_cpu_s"] = statistics.mean(run["cpu_s"])
    return {"streams_per_watcher": paths, "measured_job_seconds": args.watch_seconds, **runs}


def server(args, outputs: Path, flags: list[str]):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SSMUSIC_CACHE_DIR": str(outputs / "cache")}
    if args.checkout:
        env["PYTHONPATH"] = str(Path(args.checkout).resolve())
    from ssmusic.pipeline import DEFAULT_MODEL_DIR

    command = [sys.executable, "-m", "ssmusic", "serve", "--port", "0", "--threads", "1", "--max-seconds", "60",
               "--checkpoint", str(args.checkpoint or DEFAULT_MODEL_DIR), *flags]
    return running_process(command, outputs / "server.log", env, clean_exit=not args.checkout)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=8, help="waves of `clients` requests at once")
    parser.add_argument("--seconds", type=float, default=1.0, help="audio per request")
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--watch-seconds", type=float, default=8.0, help="audio of the measured job")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--watch-audio", action="store_true", help="watchers alternate event and audio streams")
    parser.add_argument("--phase", choices=["load", "watchers", "all"], default="all")
    parser.add_argument("--checkout", default=None, help="serve from this source tree (watchers phase only)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.checkout and args.phase != "watchers":
        parser.error("--checkout: only with --phase watchers (an older server lacks the load phase's flags)")
    results = {"command": "python " + " ".join(["benchmarks/serve_load.py", *(argv or sys.argv[1:])]),
               "checkpoint": args.checkpoint or "the shipped model", "clients": args.clients, "rounds": args.rounds,
               "seconds": args.seconds, "server_flags": LOAD_FLAGS, "cpu_count": os.cpu_count(),
               "load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if args.phase in ("load", "all"):
            with server(args, scratch, LOAD_FLAGS) as url:
                outputs = Path(url.banner.split("(outputs in ")[1].split(";")[0])
                results["load"] = load_phase(url, url.process.pid, outputs, args)
        if args.phase in ("watchers", "all"):
            flags = ["--max-connections", str(args.watchers + 8)] if not args.checkout else []
            with server(args, scratch, flags) as url:
                results["watchers"] = {"checkout": args.checkout, **watchers_phase(url, url.process.pid, args)}
    if args.out:
        write_json_atomic(args.out, results)
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
