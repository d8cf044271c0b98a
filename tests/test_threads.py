"""The CLI's thread policy (ssmusic.threads): OMP_WAIT_POLICY=PASSIVE set before torch loads, unless the
user set it; --threads checked. Why, measured: benchmarks/threads_policy.py, docs/performance.md."""

import os
import subprocess
import sys

import pytest
import torch

from ssmusic import threads
from ssmusic.cli import main
from ssmusic.errors import SsmusicError


def test_the_cli_sets_a_passive_wait_policy_unless_one_is_set(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    main(["generate", "x", "--seconds", "0", "-o", str(tmp_path / "x.wav")])  # refused early; the policy is set first
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    main(["generate", "x", "--seconds", "0", "-o", str(tmp_path / "x.wav")])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_torch_is_not_loaded_before_the_policy_is_set():
    """libgomp reads the variable once, when torch loads: the CLI module must not import torch."""
    code = "import sys; import ssmusic.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_threads_flag(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert threads.set_threads(0) == before  # torch's default kept
        assert threads.set_threads(2) == 2
    finally:
        torch.set_num_threads(before)
    for bad in (-1, 1.5, True):
        with pytest.raises(SsmusicError, match="--threads"):
            threads.set_threads(bad)
