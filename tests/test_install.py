"""install.sh's decisions, run offline against a fake `python` (and fake apt-get/sudo) that log
what they are asked to do."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0"

FAKE_PYTHON = """#!/usr/bin/env bash
echo "python $*" >> "$FAKE_LOG"
case "$*" in
  *"sys.prefix == sys.base_prefix"*) exit "$FAKE_VENV_RC" ;;
  *"print(sys.prefix)"*) echo /fake/env ;;
  *"--index-url"*) exit "$FAKE_INDEX_RC" ;;
  *"ssmusic --version"*) echo "ssmusic 0.1.0" ;;
esac
exit 0
"""
FAKE_TOOL = '#!/usr/bin/env bash\necho "$(basename "$0") $*" >> "$FAKE_LOG"\n'


def _install(tmp_path: Path, in_venv: bool, index_reachable: bool = True, dry: bool = False):
    """Run a copy of install.sh (it works in its own directory, so no .venv lands in the repo)."""
    repo, bin_dir = tmp_path / "repo", tmp_path / "bin"
    repo.mkdir()
    bin_dir.mkdir()
    shutil.copy(ROOT / "install.sh", repo / "install.sh")
    for name, text in (("python", FAKE_PYTHON), ("apt-get", FAKE_TOOL), ("sudo", FAKE_TOOL),
                       ("fluidsynth", FAKE_TOOL), ("chromium", FAKE_TOOL), ("chromedriver", FAKE_TOOL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "log"
    log.touch()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": str(bin_dir / "python"),
           "FAKE_LOG": str(log), "FAKE_VENV_RC": "0" if in_venv else "1",
           "FAKE_INDEX_RC": "0" if index_reachable else "1", "INSTALL_DRY_RUN": "1" if dry else "0"}
    env.pop("VIRTUAL_ENV", None)
    started = time.monotonic()
    out = subprocess.run(["bash", str(repo / "install.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout, log.read_text(), time.monotonic() - started


def test_without_a_virtualenv_it_creates_and_uses_dot_venv(tmp_path):
    stdout, _, _ = _install(tmp_path, in_venv=False, dry=True)
    fake = tmp_path / "bin" / "python"
    assert "no virtualenv active: installing into" in stdout
    assert f"+ {fake} -m venv .venv" in stdout
    assert f"+ .venv/bin/python -m pip install -q --timeout 10 --retries 0 {CPU_INDEX}" in stdout
    assert "+ .venv/bin/python -m pip install -q -e .[test,demo]" in stdout
    assert f"{fake} -m pip" not in stdout  # never pip into the (externally managed) system Python


def test_in_a_virtualenv_it_installs_there(tmp_path):
    stdout, _, _ = _install(tmp_path, in_venv=True, dry=True)
    fake = tmp_path / "bin" / "python"
    assert "installing into the active virtualenv (/fake/env)" in stdout
    assert "-m venv" not in stdout and ".venv/bin/python" not in stdout
    assert f"+ {fake} -m pip install -q -e .[test,demo]" in stdout


@pytest.mark.parametrize("reachable", [True, False])
def test_torch_asks_the_cpu_index_first_and_falls_back_to_the_plain_pin(tmp_path, reachable):
    stdout, log, seconds = _install(tmp_path, in_venv=True, index_reachable=reachable)
    pip = [line for line in log.splitlines() if " -m pip install" in line]
    assert pip[1].endswith(f"--timeout 10 --retries 0 {CPU_INDEX}")
    if reachable:
        assert len(pip) == 3 and "unreachable" not in stdout
    else:
        assert "CPU wheel index is unreachable" in stdout
        assert pip[2] == "python -m pip install -q torch==2.13.0"
    assert pip[-1] == "python -m pip install -q -e .[test,demo]"
    assert "ssmusic installed: ssmusic 0.1.0" in stdout and seconds < 30


def test_pyproject_states_the_torch_the_code_needs():
    import re

    import torch

    (spec,) = re.findall(r'"(torch\b[^"]*)"', (ROOT / "pyproject.toml").read_text())  # tomllib is 3.11+
    minimum = tuple(int(x) for x in re.fullmatch(r"torch>=(\d+)\.(\d+)", spec).groups())
    # the newest API the code calls: F.rms_norm (2.4); safe_globals with (object, "module.name")
    # pairs, ssmusic/training/ssmttm.py (2.6)
    assert minimum >= (2, 6), spec
    assert hasattr(torch.nn.functional, "rms_norm") and hasattr(torch.serialization, "safe_globals")
    assert tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) >= minimum


def test_missing_chromium_is_installed_from_apt_and_the_demo_extra_with_pip(tmp_path):
    """Only the tools install.sh runs are on PATH: no chromium, no chromedriver, no fluidsynth."""
    stdout, _, _ = _install(tmp_path, in_venv=True, dry=True)  # lays out the fakes
    bin_dir, only = tmp_path / "bin", tmp_path / "only"
    only.mkdir()
    for name in ("python", "apt-get", "sudo"):
        (only / name).symlink_to(bin_dir / name)
    for tool in ("bash", "dirname", "id", "basename"):
        (only / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(only), "PYTHON": str(only / "python"), "FAKE_LOG": str(tmp_path / "log"),
           "FAKE_VENV_RC": "0", "FAKE_INDEX_RC": "0", "INSTALL_DRY_RUN": "1"}
    out = subprocess.run([shutil.which("bash"), str(tmp_path / "repo" / "install.sh")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    (apt,) = [line for line in out.stdout.splitlines() if "apt-get install" in line]
    assert "chromium chromium-driver" in apt and "fluidsynth" in apt
    assert "-m pip install -q -e .[test,demo]" in out.stdout


def test_a_non_editable_install_holds_every_file_the_package_reads(tmp_path):
    """Build the wheel from the tracked files (as `pip install .` does) and install it elsewhere: every
    tracked file under ssmusic/ is in it (the C kernel's source, the web page, the shipped model, the
    codec's learned decoder), the installed package finds and builds its C decode-step kernel, and its
    codec decodes with the learned decoder by default."""
    import sys
    import zipfile

    listed = subprocess.run(["git", "ls-files", "ssmusic", "pyproject.toml", "README.md"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    source = tmp_path / "src"
    for name in listed.stdout.split():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("ssmusic-*.whl"))
    packaged = set(zipfile.ZipFile(wheel).namelist())
    tracked = {name for name in listed.stdout.split() if name.startswith("ssmusic/")}
    assert tracked - packaged == set()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    code = ("from ssmusic.model.ops import cpu_step; print(cpu_step.SOURCE); "
            "print(cpu_step.status() if cpu_step._compiler() else 'no compiler'); "
            "from ssmusic.codec.codecs import load_codec; backend = load_codec().backend; "
            "print(backend.config.decoder, type(backend.vocoder).__name__)")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "SSMUSIC_CACHE_DIR": str(tmp_path / "cache"),
           "SSMUSIC_COMPILE_CACHE": str(tmp_path / "compile")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    where, status, decoder = out.stdout.splitlines()
    assert where.startswith(str(tmp_path / "site")), out
    assert status == "no compiler" or status.startswith("on ("), out
    assert decoder == "vocoder Vocoder", out
