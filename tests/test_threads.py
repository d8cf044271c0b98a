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


def test_generate_and_serve_default_to_the_measured_thread_count():
    """One thread: the fastest or within 16% of it for generate and stream with the shipped model on
    the idle and the busy 2-core machine (results/threads_policy_default_v3.json; the previous
    default's: results/threads_policy_default_v2.json)."""
    import argparse
    import json
    from pathlib import Path

    from ssmusic.generate import add_arguments as generate_arguments
    from ssmusic.serve.server import add_arguments as serve_arguments

    for add in (generate_arguments, serve_arguments):
        parser = argparse.ArgumentParser(add_help=False)
        add(parser)
        assert parser.parse_args([]).threads == threads.GENERATE_THREADS == 1
    for name in ("threads_policy_default_v3.json", "threads_policy_default_v2.json"):
        table = json.loads((Path(__file__).parents[1] / "results" / name).read_text())
        generate = {(c["load"], c["threads"], c["policy"]): c["generate_s"]["median"] for c in table["cells"].values()}
        for load in ("idle", "busy"):
            fastest = min(v for (l, _, _), v in generate.items() if l == load)
            assert generate[(load, 1, "default")] <= 1.16 * fastest
