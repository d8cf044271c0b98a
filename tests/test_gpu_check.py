"""benchmarks/gpu_check.sh and benchmarks/gpu_run.sh: these check what a CPU can, their arguments
and the plan they would run (the GPU run itself is in docs/gpu.md). `--device cpu --quick` runs the
same steps at toy sizes (about 2 minutes on a 2-core machine, so not part of the suite, except the
three GPU-speed steps below)."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.sh"
RUN = Path(__file__).parents[1] / "benchmarks" / "gpu_run.sh"
STEPS = ["env", "fused", "tests", "data", "prepare", "train", "floor", "bench", "decode", "speed", "scan"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_help_and_bad_arguments():
    assert _run("--help").returncode == 0 and "--dry-run" in _run("--help").stdout
    bad = _run("--no-such-flag")
    assert bad.returncode == 2 and "unknown argument: --no-such-flag" in bad.stderr
    device = _run("--device", "tpu")
    assert device.returncode == 2 and "expected cuda or cpu" in device.stderr


def test_dry_run_plans_every_step_on_cuda_and_runs_nothing(tmp_path):
    out = _run("--dry-run", "--workdir", str(tmp_path), "--python", sys.executable)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    commands = {line.split("]")[0][1:]: line for line in lines if line.startswith("[")}
    assert list(commands) == STEPS
    assert "tests/model/test_mamba2.py -k fused" in commands["fused"]
    assert "--preset small --steps 200" in commands["train"] and "--device cuda" in commands["train"]
    assert "bench --device cuda --decode-floor" in commands["floor"]
    assert "bench --device cuda --positions" in commands["bench"]
    assert "| step | status | seconds | log |" in out.stdout
    assert out.stdout.count("| dry-run |") == len(STEPS)
    assert "gpu_decode.py --device cuda" in commands["decode"] and "gpu_train.py --device cuda" in commands["speed"]
    assert not (tmp_path / "demo").exists()  # nothing ran


def test_quick_cpu_plan_uses_toy_sizes(tmp_path):
    out = _run("--dry-run", "--device", "cpu", "--quick", "--workdir", str(tmp_path))
    assert out.returncode == 0
    assert "--preset tiny --steps 4" in out.stdout and "--decode-floor --quick" in out.stdout
    assert "--device cuda" not in out.stdout


def test_a_prepared_dataset_replaces_the_demo_and_ignored_tests_are_left_out(tmp_path):
    data = tmp_path / "prepared"
    data.mkdir()
    missing = _run("--dry-run", "--data", str(data))
    assert missing.returncode == 2 and "has no manifest.json" in missing.stderr
    (data / "manifest.json").write_text("{}")
    out = _run("--dry-run", "--workdir", str(tmp_path / "work"), "--data", str(data), "--workers", "8",
               "--ignore", "tests/serve/test_serve_browser.py", "--python", sys.executable)
    assert out.returncode == 0, out.stderr
    commands = {line.split("]")[0][1:]: line for line in out.stdout.splitlines() if line.startswith("[")}
    assert "data" not in commands and "prepare" not in commands
    assert f"ssmusic train {data} " in commands["train"]
    assert "--ignore=tests/serve/test_serve_browser.py" in commands["tests"]
    assert "-n 8" in commands["tests"]  # this interpreter has xdist (the suite's own runner)
    chosen = _run("--dry-run", "--workdir", str(tmp_path / "w2"), "--tests", "tests/model/test_lm.py", "--tests",
                  "tests/model/test_scan.py::test_x", "--no-compile", "--python", sys.executable)
    commands = {line.split("]")[0][1:]: line for line in chosen.stdout.splitlines() if line.startswith("[")}
    assert commands["tests"].endswith(" tests/model/test_lm.py tests/model/test_scan.py::test_x")
    assert "--no-compile" in commands["floor"] and "--no-compile" in commands["bench"]
    workers = _run("--dry-run", "--workers", "many")
    assert workers.returncode == 2 and "--workers: expected a whole number" in workers.stderr


def test_the_script_is_offline_and_installs_nothing():
    text = SCRIPT.read_text()
    assert "HF_HUB_OFFLINE=1" in text
    assert "pip install" not in text and "curl " not in text and "wget " not in text


def test_a_time_limit_cuts_the_running_step_skips_the_rest_and_still_prints_the_summary(tmp_path):
    # one second: the first step (env: importing torch, ~2 s) is cut, or skipped where the script's
    # own start (probing for xdist) took the second already (seen on a GPU machine)
    out = _run("--device", "cpu", "--quick", "--time-limit", "1", "--workdir", str(tmp_path),
               "--python", sys.executable)
    assert out.returncode == 1
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ") and "step" not in line]
    assert len(rows) == len(STEPS) and all("skipped (--time-limit 1 s reached)" in row for row in rows[1:])
    assert "| cut at --time-limit 1 s |" in rows[0] or "skipped (--time-limit 1 s reached)" in rows[0]
    bad = _run("--time-limit", "soon")
    assert bad.returncode == 2 and "--time-limit: expected a whole number" in bad.stderr


def test_only_chosen_steps_run_and_out_gets_a_few_files(tmp_path):
    """--only runs the steps named (the GPU-speed ones here, at toy sizes on the CPU: the scripts
    themselves run), --out receives the summary, each step's JSON and one archive of the logs."""
    out = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--quick", "--no-compile", "--only",
                          "decode,speed,scan", "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
                          "--python", sys.executable], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [(row["step"], row["status"]) for row in summary] == [("decode", "ok"), ("speed", "ok"), ("scan", "ok")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "gpu_decode.json", "gpu_train.json", "logs.tar.gz", "scan_speed_cpu.json", "summary.json"]
    with tarfile.open(tmp_path / "out" / "logs.tar.gz") as logs:
        assert sorted(Path(name).name for name in logs.getnames() if name.endswith(".log")) == [
            "decode.log", "scan.log", "speed.log"]
    decode = json.loads((tmp_path / "out" / "gpu_decode.json").read_text())["presets"]["tiny"]
    assert {"graphs float32 x1", "eager float32 x1", "graphs float32 x4"} <= set(decode)
    assert decode["same_codes_graphs_vs_eager"] is True  # the static path samples eager's codes
    speed = json.loads((tmp_path / "out" / "gpu_train.json").read_text())
    assert {"simba eager", "transformer eager", "simba eager chunk 32"} == set(speed["runs"])
    assert speed["simba_over_transformer_eager"] > 0


def test_the_gpu_run_plan(tmp_path):
    """gpu_run.sh: the steps a lent GPU runs, the CUDA tests that need no soundfile or MiniLM, its
    output in OUT; without OUT it refuses before anything runs."""
    missing = subprocess.run(["bash", str(RUN), "--dry-run"], capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin"})
    assert missing.returncode == 2 and "no OUT" in missing.stderr
    out = subprocess.run(["bash", str(RUN), "--dry-run", "--out", str(tmp_path), "--python", sys.executable],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    commands = {line.split("]")[0][1:]: line for line in out.stdout.splitlines() if line.startswith("[")}
    assert list(commands) == ["env", "fused", "tests", "decode", "speed", "scan"]
    assert commands["tests"].endswith(" tests/model")
    assert "no OUT" not in out.stderr and not any(tmp_path.iterdir())  # a dry run writes nothing
