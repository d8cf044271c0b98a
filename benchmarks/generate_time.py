"""Wall time of the whole `ssmusic generate` command, as a user runs it: a fresh process each time
(imports, text encoder, codec and model loading included), one warm-up run not counted.

    python benchmarks/generate_time.py [--runs 5] [--seconds 10] [--out results/generate_time.json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ssmusic.io.atomic import write_json_atomic

PROMPT = "a slow chorale played on a church organ"


def time_generate(runs: int, seconds: float, extra: list[str]) -> list[float]:
    """Seconds of wall time of each counted run (after one warm-up)."""
    walls = []
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "ssmusic", "generate", PROMPT, "--seconds", str(seconds),
                   "-o", str(Path(scratch) / "out.wav"), *extra]
        for index in range(runs + 1):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            if index:  # the first run warms the file cache
                walls.append(time.perf_counter() - start)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("extra", nargs="*", help="further generate flags, after --")
    args = parser.parse_args()
    walls = time_generate(args.runs, args.seconds, args.extra)
    result = {"command": f"ssmusic generate {PROMPT!r} --seconds {args.seconds:g} -o out.wav " + " ".join(args.extra),
              "runs": len(walls), "wall_s": {"median": round(statistics.median(walls), 2),
                                             "min": round(min(walls), 2), "max": round(max(walls), 2)},
              "audio_seconds": args.seconds}
    print(result)
    if args.out:
        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
