"""benchmarks/gpu_check.sh: these check what a CPU can, its arguments and the plan it would run
(the GPU run itself is in docs/gpu.md). `--device cpu --quick` runs the same steps at toy
sizes (about 2 minutes on a 2-core machine, so not part of the suite)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.sh"


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
    assert list(commands) == ["env", "fused", "tests", "data", "prepare", "train", "floor", "bench"]
    assert "tests/model/test_mamba2.py -k fused" in commands["fused"]
    assert "--preset small --steps 200" in commands["train"] and "--device cuda" in commands["train"]
    assert "bench --device cuda --decode-floor" in commands["floor"]
    assert "bench --device cuda --positions" in commands["bench"]
    assert "| step | status | seconds | log |" in out.stdout
    assert out.stdout.count("| dry-run |") == 8
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
    assert len(rows) == 8 and all("skipped (--time-limit 1 s reached)" in row for row in rows[1:])
    assert "| cut at --time-limit 1 s |" in rows[0] or "skipped (--time-limit 1 s reached)" in rows[0]
    bad = _run("--time-limit", "soon")
    assert bad.returncode == 2 and "--time-limit: expected a whole number" in bad.stderr
