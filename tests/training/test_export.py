import json

import pytest
import torch

from ssmusic.cli import main
from ssmusic.errors import SsmusicError
from ssmusic.training.export import export
from ssmusic.model.lm import MusicLM
from ssmusic.io.tensors import load_tensors


def test_export_fp16_with_sampling_defaults(tmp_path, tiny_model_dir):
    out = tmp_path / "shipped"
    assert main(["export", str(tiny_model_dir.parent), "--out", str(out), "--dtype", "float16", "--cfg", "5",
                 "--temperature", "0.9", "--top-k", "40"]) == 0  # the run dir: its final/ is found
    pipeline = json.loads((out / "pipeline.json").read_text())
    assert (pipeline["cfg_scale"], pipeline["temperature"], pipeline["top_k"]) == (5.0, 0.9, 40)
    assert all(t.dtype == torch.float16 for t in load_tensors(out / "model.safetensors").values()
               if t.is_floating_point())
    assert (out / "metrics.jsonl").is_file()  # the training log travels with the model
    original, shipped = MusicLM.from_pretrained(tiny_model_dir), MusicLM.from_pretrained(out)
    assert next(shipped.parameters()).dtype == torch.float32  # cast back on load
    codes = torch.randint(0, 16, (2, 1, 12))
    text, mask = torch.randn(2, 3, 384), torch.ones(2, 3, dtype=torch.bool)
    with torch.no_grad():
        a, b = original(codes, text, mask), shipped(codes, text, mask)
    assert not torch.equal(a, b)  # really rounded...
    torch.testing.assert_close(a, b, atol=2e-2, rtol=2e-2)  # ...to fp16 precision


def test_export_keeps_the_model_card(tmp_path, tiny_model_dir):
    source = tmp_path / "carded"
    export(tiny_model_dir, source)
    (source / "model_card.json").write_text('{"examples": ["a waltz"]}')
    export(source, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "model_card.json").read_text()) == {"examples": ["a waltz"]}


def test_export_refuses_bad_targets(tmp_path, tiny_model_dir):
    with pytest.raises(SsmusicError, match="the source itself"):
        export(tiny_model_dir, tiny_model_dir)
    with pytest.raises(SsmusicError, match="--dtype"):
        export(tiny_model_dir, tmp_path / "x", dtype="int4")
    assert not (tmp_path / "x").exists()
