"""Importing SSM-TTM's released checkpoint: a tiny checkpoint with the released key names and
shapes, an independent reference forward of the released model (transformers' Mamba2Mixer +
plain torch, written from the released simba.py's structure), and the safety of loading it."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from ssmusic.training import ssmttm
from ssmusic.errors import SsmusicError

# vocab 17 = the tiny test codec's 16 codes + the pad/start id; text_dim 384 = the offline MiniLM
TINY = dict(layers=2, d_model=32, d_state=16, headdim=16, vocab=17, codec_layer=1, text_dim=384)


class RefRMSNorm(nn.Module):
    """mamba_ssm.ops.triton.layer_norm.RMSNorm: weight only, eps 1e-5."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def _mixer(d_model: int, d_state: int, headdim: int):
    from transformers import Mamba2Config
    from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer

    # mamba_ssm Mamba2 defaults the release relies on: ngroups 1, conv bias, no in/out bias,
    # gated RMSNorm (norm after gate) with eps 1e-5, no dt limit, D per head.
    config = Mamba2Config(hidden_size=d_model, state_size=d_state, expand=2, head_dim=headdim,
                          num_heads=2 * d_model // headdim, n_groups=1, conv_kernel=4, use_conv_bias=True,
                          use_bias=False, layer_norm_epsilon=1e-5, chunk_size=8, num_hidden_layers=1)
    return Mamba2Mixer(config, layer_idx=0)


class RefSiMBA(nn.Module):
    """The released Text_Mmamba (prefix SiMBA), same attribute names, written for this test."""

    def __init__(self, layers: int, d_model: int, d_state: int, headdim: int, vocab: int, codec_layer: int,
                 text_dim: int) -> None:
        super().__init__()
        self.condition_linear = nn.Linear(text_dim, d_model)
        self.condition_norm = nn.LayerNorm(d_model)
        self.embedding = nn.ModuleList(nn.Embedding(vocab, d_model) for _ in range(codec_layer))
        self.backbone = nn.ModuleList()
        for _ in range(layers):
            block = nn.Module()
            block.mamba = nn.Module()
            block.mamba.norm = RefRMSNorm(d_model)
            block.mamba.mamba = _mixer(d_model, d_state, headdim)
            block.ff = nn.Module()
            block.ff.norm = RefRMSNorm(d_model)
            block.ff.feed_forward = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Dropout(0.3),
                                                  nn.Linear(2 * d_model, d_model))
            self.backbone.append(block)
        self.lm_head = nn.ModuleList(nn.Linear(d_model, vocab, bias=False) for _ in range(codec_layer))

    def forward(self, codes: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """codes [B,K,T] (input ids, start token included), text [B,S,text_dim] ->
        logits [B,K,T+1,vocab] from the last text position on."""
        x = sum(emb(codes[:, k]) for k, emb in enumerate(self.embedding))
        prefix = self.condition_norm(self.condition_linear(text))
        h = torch.cat([prefix, x], dim=1)
        half = h.shape[-1] // 2
        pos = torch.arange(h.shape[1], dtype=torch.float32)[:, None]
        phase = pos / 10000.0 ** (torch.arange(half, dtype=torch.float32) / (half - 1))
        h = h + torch.cat([phase.cos(), phase.sin()], dim=-1)
        for block in self.backbone:
            h = h + block.mamba.mamba(block.mamba.norm(h))
            h = h + block.ff.feed_forward(block.ff.norm(h))
        logits = torch.stack([head(h) for head in self.lm_head], dim=1)
        return logits[:, :, text.shape[1] - 1:]


def make_reference(seed: int = 0, **overrides) -> RefSiMBA:
    torch.manual_seed(seed)
    model = RefSiMBA(**{**TINY, **overrides}).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("A_log"):
                param.copy_(torch.log(torch.empty_like(param).uniform_(1, 16)))
            elif name.endswith("dt_bias"):
                param.copy_(torch.empty_like(param).uniform_(-4, 0))
            elif name.endswith(("norm.weight", ".D")):
                param.copy_(1 + 0.2 * torch.randn_like(param))
            else:
                param.copy_(0.3 * torch.randn_like(param))
    return model


def lightning_checkpoint(model: RefSiMBA, text_encoder: dict[str, torch.Tensor] | None = None,
                         **extra) -> dict:
    """What Lightning 2.6's ModelCheckpoint writes for Text_Mmamba_pl (plain data + tensors)."""
    state = {f"music_model.{k}": v.clone() for k, v in model.state_dict().items()}
    for key, value in (text_encoder or {"shared.weight": torch.randn(8, 4)}).items():
        state[f"text_encoder.{key}"] = value
    checkpoint = {
        "epoch": 3, "global_step": 1500, "pytorch-lightning_version": "2.6.0", "state_dict": state,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 3}}}},
        "callbacks": {"ModelCheckpoint{'monitor': None, 'mode': 'min', 'every_n_train_steps': 500}": {
            "monitor": None, "best_model_score": None, "dirpath": "/ckpts/x/checkpoints",
            "kth_value": torch.tensor(float("inf")), "best_k_models": {}}},
        "optimizer_states": [{"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2)}},
                              "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0]}]}],
        "lr_schedulers": [{"base_lrs": [1e-4], "last_epoch": 1500, "lr_lambdas": [None]}],
        "hparams_name": "kwargs",
        "hyper_parameters": {"config": {"model": {"layers": 2}}},
    }
    checkpoint.update(extra)
    return checkpoint


def release_config(model: RefSiMBA, **changes) -> dict:
    t = TINY
    config = {"training": {"name": "tiny", "precision": "bf16"},
              "model": {"layers": t["layers"], "vocab_size": t["vocab"], "codec_layer": t["codec_layer"],
                        "d_model": t["d_model"], "drop_p": 0.3, "d_state": t["d_state"], "is_incontext": True},
              "optimizer": {"optim_lr": 1e-4, "weight_decay": 0.02, "betas": [0.9, 0.999]}}
    config["model"].update(changes)
    return config


@pytest.fixture()
def release(tmp_path: Path) -> tuple[RefSiMBA, Path, Path]:
    model = make_reference()
    ckpt = tmp_path / "simba.ckpt"
    torch.save(lightning_checkpoint(model), ckpt)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(release_config(model)))
    return model, ckpt, config


def test_read_checkpoint_plain_lightning(release):
    _, ckpt, _ = release
    checkpoint = ssmttm.read_checkpoint(ckpt)
    music, text = ssmttm.split_state_dict(checkpoint, str(ckpt))
    assert "condition_linear.weight" in music and "backbone.1.ff.feed_forward.3.bias" in music
    assert list(text) == ["shared.weight"]


def test_attribute_dict_is_read_as_plain_dict(tmp_path):
    # Fake the Lightning class only while pickling, so the loader never sees it importable.
    names = ["lightning", "lightning.fabric", "lightning.fabric.utilities", "lightning.fabric.utilities.data"]
    saved = {n: sys.modules.get(n) for n in names}
    module = types.ModuleType(names[-1])

    class AttributeDict(dict):
        pass

    AttributeDict.__module__ = module.__name__
    AttributeDict.__qualname__ = "AttributeDict"
    module.AttributeDict = AttributeDict
    try:
        for name in names[:-1]:
            sys.modules[name] = types.ModuleType(name)
        sys.modules[names[-1]] = module
        torch.save({"state_dict": {}, "hyper_parameters": AttributeDict(config={"a": 1})}, tmp_path / "a.ckpt")
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    loaded = ssmttm.read_checkpoint(tmp_path / "a.ckpt")
    assert type(loaded["hyper_parameters"]) is dict and loaded["hyper_parameters"] == {"config": {"a": 1}}


class _Payload:
    """A pickle that would create a file if it were ever executed."""

    target = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_non_allow_listed_object_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "executed"
    payload = _Payload()
    payload.target = str(marker)
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"music_model.x": torch.zeros(1)}, "extra": payload}, ckpt)
    with pytest.raises(SsmusicError, match=r"evil\.ckpt: refused: .*not plain data"):
        ssmttm.read_checkpoint(ckpt)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"this is not a pickle")
    with pytest.raises(SsmusicError, match="bad.ckpt"):
        ssmttm.read_checkpoint(bad)
    with pytest.raises(SsmusicError, match="not found"):
        ssmttm.read_checkpoint(tmp_path / "missing.ckpt")


def test_infer_config_from_shapes(release):
    model, ckpt, config = release
    music, _ = ssmttm.split_state_dict(ssmttm.read_checkpoint(ckpt), "x")
    lm = ssmttm.infer_config(music, ssmttm.read_release_config(config), "x")
    assert (lm.d_model, lm.n_layers, lm.d_state, lm.expand, lm.headdim, lm.d_conv) == (32, 2, 16, 2, 16, 4)
    assert (lm.card, lm.n_codebooks, lm.text_dim, lm.ff_mult) == (16, 1, 384, 2)
    assert lm.positions == "sinusoidal" and lm.use_text_mask is False and lm.dropout == 0.3
    assert lm.start_token and not lm.final_norm and lm.null_condition == "empty_text"


def test_config_mismatch_and_other_variants_refused(release, tmp_path):
    model, ckpt, _ = release
    music, _ = ssmttm.split_state_dict(ssmttm.read_checkpoint(ckpt), "x")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(release_config(model, d_state=512)))
    with pytest.raises(SsmusicError, match="d_state=512 but the weights say 16"):
        ssmttm.infer_config(music, ssmttm.read_release_config(wrong), str(wrong))
    cross = tmp_path / "cross.json"
    cross.write_text(json.dumps(release_config(model, is_incontext=False)))
    with pytest.raises(SsmusicError, match="is_incontext"):
        ssmttm.read_release_config(cross)


def test_export_text_encoder_round_trips(tmp_path):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    t5 = T5EncoderModel(T5Config(vocab_size=40, d_model=16, d_kv=4, d_ff=24, num_layers=2, num_heads=4,
                                 feed_forward_proj="gated-gelu")).eval()
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    (tokenizer / "spiece.model").write_bytes(b"sentencepiece bytes")
    with pytest.raises(SsmusicError, match="no T5 tokenizer"):
        ssmttm.export_text_encoder(t5.state_dict(), tmp_path / "x", tmp_path)
    out = ssmttm.export_text_encoder(t5.state_dict(), tmp_path / "t5", tokenizer)
    assert (out / "spiece.model").read_bytes() == b"sentencepiece bytes"
    assert (out / "model.safetensors").is_file()
    again = T5EncoderModel.from_pretrained(out).eval()
    ids = torch.randint(0, 40, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids, attention_mask=mask).last_hidden_state,
                                   t5(input_ids=ids, attention_mask=mask).last_hidden_state)


def _imported(release, tmp_path):
    from ssmusic.model.lm import MusicLM

    reference, ckpt, config = release
    out = ssmttm.import_checkpoint(ckpt, config, tmp_path / "model")
    return reference, MusicLM.from_pretrained(out), out


@pytest.mark.usefixtures("transformers_mamba2_in_pytorch")
def test_imported_logits_equal_the_released_forward(release, tmp_path):
    reference, ours, _ = _imported(release, tmp_path)
    card = TINY["vocab"] - 1
    torch.manual_seed(1)
    codes = torch.randint(0, card, (2, 1, 11))
    text = torch.randn(2, 7, TINY["text_dim"])
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False  # ignored, as the released model ignores it
    start = torch.full((2, 1, 1), card)  # create_empty_prompt: the pad id 1024 starts the audio
    with torch.no_grad():
        # released: [text ; start, c0 .. c9] -> logits from the last text position; the first predicts
        # the start frame, the rest predict c0 .. c10
        expected = reference(torch.cat([start, codes[..., :-1]], dim=-1), text)[:, :, 1:, :card]
        parallel = ours(codes, text, mask)
    recurrent = ours.recurrent_logits(codes, text, mask)
    assert expected.abs().mean() > 0.1
    torch.testing.assert_close(parallel, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(recurrent, expected, atol=1e-4, rtol=1e-4)


def test_import_writes_a_model_directory_atomically(release, tmp_path):
    _, ckpt, config = release
    out = ssmttm.import_checkpoint(ckpt, config, tmp_path / "model")
    assert sorted(p.name for p in out.iterdir()) == ["lm_config.json", "model.safetensors", "pipeline.json"]
    pipeline = json.loads((out / "pipeline.json").read_text())
    assert pipeline["codec"] == "descript/dac_44khz" and pipeline["text_encoder"] == "google/flan-t5-base"
    assert (pipeline["min_text_tokens"], pipeline["min_text_pad_id"], pipeline["temperature"]) == (60, 1, 1.2)
    with pytest.raises(SsmusicError, match="already exists"):
        ssmttm.import_checkpoint(ckpt, config, out)
    broken = tmp_path / "broken.ckpt"
    checkpoint = torch.load(ckpt, weights_only=True)
    del checkpoint["state_dict"]["music_model.lm_head.0.weight"]
    torch.save(checkpoint, broken)
    with pytest.raises(SsmusicError, match="lacks 1 weight"):
        ssmttm.import_checkpoint(broken, config, tmp_path / "never")
    assert not (tmp_path / "never").exists() and not list(tmp_path.glob(".never*"))


def test_import_then_generate_from_the_cli(release, tmp_path, tiny_codec_dir):
    import soundfile

    from ssmusic.cli import main

    _, ckpt, config = release
    out = tmp_path / "model"
    assert main(["import-ssmttm", str(ckpt), "--config", str(config), "--out", str(out),
                 "--text-encoder", "all-MiniLM-L6-v2", "--codec", str(tiny_codec_dir)]) == 0
    wav = tmp_path / "out.wav"
    assert main(["generate", "a calm piano piece", "--checkpoint", str(out), "-o", str(wav), "--seconds", "0.5",
                 "--seed", "0"]) == 0
    audio, rate = soundfile.read(wav)
    assert abs(len(audio) / rate - 0.5) < 0.1 and abs(audio).max() > 0
