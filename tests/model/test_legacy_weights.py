"""Weights saved before the decoder's blocks were named (keys blocks.{i}.{j}.norm / .mixer) still
load, and give the outputs they gave then: logits, step-by-step logits and sampled codes on fixed
inputs, recorded by tests/fixtures/make_legacy_fixtures.py with the code of that time."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ssmusic.model.lm import MusicLM

FIXTURES = Path(__file__).parents[1] / "fixtures" / "legacy_models"
DEFAULT_MODEL = Path(__file__).parents[2] / "ssmusic" / "assets" / "default_model"
VARIANTS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def outputs(model: MusicLM, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same calls as make_legacy_fixtures.outputs, through today's API."""
    from ssmusic.model.sampling import SamplingParams

    out = {"logits": model(x["codes"], x["text"], x["text_mask"]),
           "recurrent_logits": model.recurrent_logits(x["codes"], x["text"], x["text_mask"])}
    out["generated"] = model.generate(x["text"], x["text_mask"], steps=6,
                                      sampling=SamplingParams(cfg_scale=3.0, top_k=5, temperature=0.9, seed=0))
    out["continued"] = model.generate(x["text"], x["text_mask"], steps=4,
                                      sampling=SamplingParams(cfg_scale=1.0, top_k=0, top_p=0.9, seed=1),
                                      prompt_codes=x["codes"][..., :3])
    return out


def check(model: MusicLM, recorded: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        got = outputs(model.eval(), recorded)
    for name in ("logits", "recurrent_logits"):
        torch.testing.assert_close(got[name], recorded[name], rtol=0, atol=1e-5)
    for name in ("generated", "continued"):
        assert torch.equal(got[name], recorded[name]), name


def test_fixtures_cover_every_backbone():
    assert {"simba_prefix", "simba_cross_einfft", "mamba_cross_k2", "transformer_prefix",
            "transformer_cross", "simba_pooled"} <= set(VARIANTS)


@pytest.mark.parametrize("name", VARIANTS)
def test_legacy_weights_load_with_identical_outputs(name):
    check(MusicLM.from_pretrained(FIXTURES / name), load_file(FIXTURES / name / "io.safetensors"))


def test_shipped_default_model_outputs_are_unchanged():
    """Recorded when the model was shipped (tests/fixtures/make_default_model_io.py)."""
    check(MusicLM.from_pretrained(DEFAULT_MODEL).float(), load_file(FIXTURES / "default_model_io.safetensors"))
