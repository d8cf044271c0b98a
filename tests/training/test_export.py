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


def test_export_keeps_the_log_of_its_own_run_only(tmp_path, tiny_model_dir):
    """A model folder outside a training run: its grandparent's metrics.jsonl is someone else's."""
    import shutil

    model = tmp_path / "stuff" / "models" / "mine"
    shutil.copytree(tiny_model_dir, model)
    (model / "metrics.jsonl").unlink(missing_ok=True)
    (tmp_path / "stuff" / "metrics.jsonl").write_text('{"step": 1, "loss": 9.9}\n')  # unrelated
    export(model, tmp_path / "out")
    assert not (tmp_path / "out" / "metrics.jsonl").exists()
    export(tiny_model_dir, tmp_path / "from_run")  # RUN_DIR/final: the run's log comes along
    assert (tmp_path / "from_run" / "metrics.jsonl").read_text() == (tiny_model_dir.parent / "metrics.jsonl").read_text()


def test_export_lora_base_into_a_missing_folder(tmp_path, tiny_model_dir, monkeypatch):
    import shutil

    from ssmusic.training import finetune

    def merged(base, adapters, out):  # stands in for the merge (tested in test_finetune): a model directory
        shutil.copytree(tiny_model_dir, out)
        return out

    monkeypatch.setattr(finetune, "merge_adapters", merged)
    out = tmp_path / "not" / "yet" / "there"
    assert main(["export", str(tmp_path / "adapter"), "--lora-base", str(tiny_model_dir), "--out", str(out)]) == 0
    assert (out / "model.safetensors").is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["there"]  # no temporary folder left
