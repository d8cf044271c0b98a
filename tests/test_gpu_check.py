"""benchmarks/gpu_check.sh has never run on a GPU here (none available): these check what a CPU
can, its arguments and the plan it would run. `--device cpu --quick` runs the same steps at toy
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
    assert list(commands) == ["env", "tests", "fused", "data", "prepare", "train", "bench"]
    assert "tests/test_mamba2.py -k fused" in commands["fused"]
    assert "--preset small --steps 200" in commands["train"] and "--device cuda" in commands["train"]
    assert "bench --device cuda" in commands["bench"]
    assert "| step | status | seconds | log |" in out.stdout
    assert out.stdout.count("| dry-run |") == 7
    assert not (tmp_path / "demo").exists()  # nothing ran


def test_quick_cpu_plan_uses_toy_sizes(tmp_path):
    out = _run("--dry-run", "--device", "cpu", "--quick", "--workdir", str(tmp_path))
    assert out.returncode == 0
    assert "--preset tiny --steps 4" in out.stdout and "--quick --decode-floor" in out.stdout
    assert "--device cuda" not in out.stdout


def test_the_script_is_offline_and_installs_nothing():
    text = SCRIPT.read_text()
    assert "HF_HUB_OFFLINE=1" in text
    assert "pip install" not in text and "curl " not in text and "wget " not in text
