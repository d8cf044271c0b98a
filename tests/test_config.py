import json

import pytest

from ssmusic.config import ConfigError, LMConfig, PipelineConfig, load_config, save_config
from ssmusic.model import presets
from ssmusic.model.presets import count_parameters


def test_json_round_trip(tmp_path):
    config = LMConfig(backbone="mamba", conditioning="cross", d_model=128, n_codebooks=4)
    save_config(config, tmp_path / "lm_config.json")
    assert load_config(LMConfig, tmp_path / "lm_config.json") == config


@pytest.mark.parametrize("field,value,message", [
    ("backbone", "rnn", "backbone"), ("conditioning", "both", "conditioning"), ("d_model", 0, "d_model"),
    ("dropout", 1.5, "dropout"), ("n_heads", 3, "n_heads"),
    ("positions", "rope", "positions"), ("card", "1024", "card"),
])
def test_invalid_values_name_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        LMConfig(**{"backbone": "transformer", field: value})


def test_ssm_head_dim_must_divide_inner_width():
    with pytest.raises(ConfigError, match="headdim"):
        LMConfig(backbone="simba", d_model=256, headdim=48)


def test_unknown_field_in_json_is_refused(tmp_path):
    path = tmp_path / "lm_config.json"
    path.write_text(json.dumps({"backbone": "simba", "d_modle": 512}))
    with pytest.raises(ConfigError, match=r"lm_config.json: unknown LMConfig field\(s\) \['d_modle'\]"):
        load_config(LMConfig, path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_config(LMConfig, path)


def test_pipeline_config_validates():
    with pytest.raises(ConfigError, match="frame_rate"):
        PipelineConfig(codec="x", text_encoder="y", sample_rate=16000, frame_rate=0, card=1024,
                       n_codebooks=1, text_dim=384, clip_seconds=10)


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
@pytest.mark.parametrize("conditioning", ["prefix", "cross"])
def test_presets_match_parameter_counts_across_backbones(preset, conditioning):
    counts = {b: count_parameters(presets.preset(preset, backbone=b, conditioning=conditioning))
              for b in ("simba", "mamba", "transformer")}
    assert max(counts.values()) / min(counts.values()) < 1.05 * 1.0001, counts
    einfft = count_parameters(presets.preset(preset, conditioning=conditioning, channel_mixer="einfft"))
    assert abs(einfft - counts["simba"]) / counts["simba"] < 0.05, (einfft, counts)
    if preset == "paper" and conditioning == "prefix":
        assert abs(counts["simba"] - 281e6) / 281e6 < 0.01, counts  # the released model's size
    if preset == "small" and conditioning == "prefix":
        assert 25e6 <= counts["simba"] <= 40e6, counts


def test_unknown_preset():
    with pytest.raises(ConfigError, match="preset"):
        presets.preset("huge")
