"""Does decoding with bf16 or int8 weights, or a bf16 SSM state, keep the music? FAD, KL and
instrument adherence of the shipped model with each decode type, on the demo test captions (seed 0,
10 s), as docs/model.md's "Following the prompt" table measures float32; and float32 with another
seed, to show how much the scores move between two samplings of the same model.

    python benchmarks/decode_dtype_quality.py DEMO_DIR --out runs/decode_dtype \
        --results results/decode_dtype_quality.json [--dtypes float32,bfloat16,int8,float32/bfloat16]

A type is WEIGHTS or WEIGHTS/STATE (`--state-dtype`, float32 when not given). Each generation is
`ssmusic generate --prompts-from DEMO_DIR/captions.csv --split test --seed 0 --decode-dtype WEIGHTS
--state-dtype STATE -o OUT/NAME` (a finished folder is reused), scored with `ssmusic evaluate`'s metrics.
Beside the scores: how many generated clips are sample-for-sample the float32 clip (a sampled
sequence diverges at the first token whose draw flips, so this is strict), and the generation time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from ssmusic.io.atomic import write_json_atomic
from ssmusic.metrics.evaluate import collect_rows, evaluate


def generate(demo: Path, out: Path, dtype: str, seed: int = 0) -> float | None:
    """Generate the test captions with `dtype` weights into out/NAME (NAME = row_name(dtype, seed));
    seconds taken (None: a finished folder reused)."""
    target = out / row_name(dtype, seed)
    captions = demo / "captions.csv"
    expected = sum(1 for line in captions.read_text().splitlines()[1:] if line.rstrip().endswith(",test"))
    if target.is_dir() and len(list(target.glob("*.wav"))) >= expected:
        return None
    started = time.perf_counter()
    weights, _, state = dtype.partition("/")
    subprocess.run([sys.executable, "-m", "ssmusic", "generate", "--prompts-from", str(captions), "--split", "test",
                    "--seed", str(seed), "--decode-dtype", weights, "--state-dtype", state or "float32",
                    "-o", str(target)], check=True)
    return time.perf_counter() - started


def row_name(dtype: str, seed: int) -> str:
    """float32, bfloat16/bfloat16 -> bfloat16_state-bfloat16, float32 seed 1 -> float32_seed1."""
    weights, _, state = dtype.partition("/")
    name = weights if state in ("", "float32") else f"{weights}_state-{state}"
    return name if seed == 0 else f"{name}_seed{seed}"


def same_audio(reference: Path, other: Path) -> dict:
    """Clips whose WAV samples equal the reference folder's, by file name."""
    import soundfile

    ref_files = sorted(reference.glob("*.wav"))
    equal = sum(1 for path in ref_files if (other / path.name).is_file()
                and (soundfile.read(path)[0] == soundfile.read(other / path.name)[0]).all())
    return {"identical": equal, "clips": len(ref_files)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="the demo dataset (data demo): audio + captions.csv with splits")
    parser.add_argument("--out", type=Path, default=Path("runs/decode_dtype"))
    parser.add_argument("--results", type=Path, default=Path("results/decode_dtype_quality.json"))
    parser.add_argument("--dtypes", default="float32,bfloat16,int8")
    parser.add_argument("--seeds", default="0", help="every type with each of these seeds (the summary averages them)")
    parser.add_argument("--noise-seeds", default="1,2", help="float32 again with these seeds: how much the scores "
                        "move between two samplings of the same model, the yardstick for the dtypes' differences")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    dtypes = args.dtypes.split(",")
    rows = [(dtype, seed) for seed in seeds for dtype in dtypes]
    rows += [("float32", int(seed)) for seed in args.noise_seeds.split(",") if seed and int(seed) not in seeds]
    record = {"command": "python " + " ".join(sys.argv), "captions": "demo test split, 10 s",
              "dtypes": {}}
    for dtype, seed in rows:
        name, first = row_name(dtype, seed), row_name(dtypes[0], seed)
        seconds = generate(args.demo, args.out, dtype, seed)
        scores = evaluate(args.out / name, args.demo, split="test")
        row = {"generate_seconds": seconds, "fad": scores["fad"]["value"], "kl": scores["kl"]["value"],
               "instrument_accuracy": scores["adherence"]["value"], "clips": len(collect_rows(args.out / name)),
               "seed": seed, "type": dtype}
        if name != first and (args.out / first).is_dir():  # the first type with the same seed
            row["audio_equal_to_" + first] = same_audio(args.out / first, args.out / name)
        record["dtypes"][name] = row
        print(name, json.dumps(row), flush=True)
    record["summary"] = summary(record["dtypes"])
    write_json_atomic(args.results, record)


def summary(rows: dict) -> dict:
    """Per decode type over its seeds: mean, lowest and highest of each score."""
    out: dict = {}
    for row in rows.values():
        out.setdefault(row["type"], []).append(row)
    return {dtype: {"seeds": [r["seed"] for r in group],
                    **{key: {"mean": sum(r[key] for r in group) / len(group), "min": min(r[key] for r in group),
                             "max": max(r[key] for r in group)} for key in ("instrument_accuracy", "fad", "kl")}}
            for dtype, group in out.items()}


if __name__ == "__main__":
    main()
