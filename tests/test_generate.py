import json

import pytest

from ssmusic.cli import main
from ssmusic.generate import plan_outputs
from ssmusic.pipeline import check_prompt, check_seconds, resolve_model_dir
from ssmusic.model.sampling import SamplingParams
from ssmusic.errors import BadValue, SsmusicError


def test_single_output_uses_the_given_wav_name(tmp_path):
    jobs = plan_outputs(["a calm piano piece"], 1, tmp_path / "out.wav")
    assert [job.wav_path for job in jobs] == [tmp_path / "out.wav"]


def test_several_outputs_get_distinct_names(tmp_path):
    jobs = plan_outputs(["organ chorale", "fiddle tune"], 2, tmp_path / "out.wav")
    names = [job.wav_path.name for job in jobs]
    assert names == ["out_0_0.wav", "out_0_1.wav", "out_1_0.wav", "out_1_1.wav"]
    jobs = plan_outputs(["Organ chorale!", "fiddle tune"], 1, tmp_path / "dir")
    assert [job.wav_path.name for job in jobs] == ["00_organ-chorale.wav", "01_fiddle-tune.wav"]


@pytest.mark.parametrize("field,value", [("seconds", -1.0), ("seconds", 0.0), ("seconds", float("nan")),
                                         ("seconds", 1e9), ("cfg_scale", -1.0), ("top_p", 1.5),
                                         ("temperature", 0.0), ("top_k", -3)])
def test_bad_settings_are_refused(field, value):
    with pytest.raises(SsmusicError):
        if field == "seconds":
            check_seconds(value)
        else:
            SamplingParams(**{field: value, "seed": 0})


@pytest.mark.parametrize("value", [float("inf"), "10", True, None, 3601])
def test_seconds_rule_refuses_non_numbers_and_names_the_flag(value):
    with pytest.raises(BadValue, match="^--seconds: expected a positive duration up to 3600 s"):
        check_seconds(value)
    with pytest.raises(BadValue, match="up to 60 s"):
        check_seconds(61, limit=60)  # a front end's tighter limit, same rule
    assert check_seconds(60, limit=60) == 60.0


@pytest.mark.parametrize("prompt,allow_empty,expected", [
    (5, True, "got int"), (["a", "b"], True, "got list"), ("  ", False, "got an empty text"),
    ("x" * 501, False, "at most 500 characters, got 501")])
def test_prompt_rule(prompt, allow_empty, expected):
    with pytest.raises(BadValue, match=expected):
        check_prompt(prompt, allow_empty=allow_empty, max_chars=500)
    assert check_prompt("", allow_empty=True) == ""  # the Python API may ask for unconditional music


def test_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SsmusicError, match="no such checkpoint"):
        resolve_model_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SsmusicError, match="not a model directory"):
        resolve_model_dir(tmp_path / "empty")
    code = main(["generate", "a waltz", "-o", str(tmp_path / "x.wav"), "--checkpoint", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no such checkpoint" in err
    assert not (tmp_path / "x.wav").exists()


def test_empty_prompt_list_is_refused(tmp_path, capsys):
    assert main(["generate", "-o", str(tmp_path / "x.wav")]) == 2
    assert "no prompts" in capsys.readouterr().err


def test_decoder_flag_reaches_the_codec(tmp_path, tiny_model_dir, capsys):
    # the tiny test codec has no learned decoder: asking for it names the missing file, writes nothing
    code = main(["generate", "a waltz", "-o", str(tmp_path / "x.wav"), "--seconds", "0.5",
                 "--checkpoint", str(tiny_model_dir), "--decoder", "vocoder"])
    err = capsys.readouterr().err
    assert code == 2 and "vocoder.json" in err and "griffin-lim" in err
    assert not (tmp_path / "x.wav").exists()


def test_generate_cli_writes_wavs_and_sidecars(tmp_path, tiny_model_dir):
    import json

    import soundfile

    out = tmp_path / "out.wav"
    code = main(["generate", "a tone at 220 Hz", "-o", str(out), "--seconds", "0.5", "--seed", "3",
                 "--checkpoint", str(tiny_model_dir)])
    assert code == 0
    data, rate = soundfile.read(out)
    assert rate == 22050 and len(data) == round(0.5 * 22050 / 512) * 512 and abs(data).max() > 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["prompt"] == "a tone at 220 Hz" and sidecar["seed"] == 3
    assert sidecar["model"]["backbone"] == "simba"
    assert sidecar["model"]["decoder"] == "griffin-lim"  # the tiny test codec ships no learned decoder
    assert sidecar["settings"] | {"decode_dtype": "float32", "state_dtype": "float32", "compile": False,
                                  "cuda_graphs": False} == sidecar["settings"]  # graphs: CUDA only
    from ssmusic.model.ops import cpu_step  # whether the C state-update kernel decoded, or why not

    assert sidecar["settings"]["cpu_step_kernel"] == cpu_step.status() and sidecar["settings"]["threads"] >= 1
    bf16_state = tmp_path / "bf16_state.wav"
    main(["generate", "a tone at 220 Hz", "-o", str(bf16_state), "--seconds", "0.5", "--seed", "3",
          "--checkpoint", str(tiny_model_dir), "--state-dtype", "bfloat16"])
    assert json.loads(bf16_state.with_suffix(".json").read_text())["settings"]["state_dtype"] == "bfloat16"
    again = tmp_path / "again.wav"
    main(["generate", "a tone at 220 Hz", "-o", str(again), "--seconds", "0.5", "--seed", "3",
          "--checkpoint", str(tiny_model_dir)])
    assert again.read_bytes() == out.read_bytes()  # seeded runs are reproducible
    other = tmp_path / "other.wav"
    main(["generate", "a tone at 220 Hz", "-o", str(other), "--seconds", "0.5", "--seed", "4",
          "--checkpoint", str(tiny_model_dir)])
    assert other.read_bytes() != out.read_bytes()
    code = main(["generate", "a", "b", "--samples", "2", "--batch", "3", "-o", str(tmp_path / "many"),
                 "--seconds", "0.3", "--checkpoint", str(tiny_model_dir.parent)])  # a run dir works too
    assert code == 0 and len(list((tmp_path / "many").glob("*.wav"))) == 4


def test_python_api_and_continuation(tiny_model_dir, tmp_path):
    import torch

    from ssmusic.pipeline import TextToMusic

    model = TextToMusic.from_pretrained(tiny_model_dir)
    audio, rate = model.generate(["a tone at 330 Hz", ""], seconds=0.4, seed=0)
    assert audio.shape[:2] == (2, 1) and rate == 22050 and torch.isfinite(audio).all()
    prompt = (torch.sin(torch.arange(11025) / 11025 * 2 * torch.pi * 440) * 0.3)[None]
    continued, _ = model.generate(["a tone at 440 Hz"], seconds=0.4, seed=0, audio_prompt=(prompt, 22050))
    frames_prompt = model.encode_audio_prompt(prompt, 22050).shape[-1]
    assert continued.shape[-1] == (frames_prompt + round(0.4 * model.config.frame_rate)) * 512


def test_transformer_refuses_beyond_its_context(tmp_path, tiny_dataset):
    from ssmusic.pipeline import TextToMusic
    from ssmusic.training.train import TrainConfig, train

    final = train(tiny_dataset, tmp_path / "run", TrainConfig(preset="tiny", backbone="transformer", steps=1,
                  batch_size=2, model_overrides={"d_model": 32, "n_layers": 1}), progress=False)
    model = TextToMusic.from_pretrained(final)
    with pytest.raises(SsmusicError, match="context of 43 frames"):
        model.generate(["x"], seconds=2.0)
    assert model.generate(["x"], seconds=1.0)[0].shape[-1] == 43 * 512  # exactly the training length


def test_unavailable_codec_or_text_encoder_is_a_clear_error(tmp_path, tiny_model_dir, capsys):
    import json
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    record = json.loads((broken / "pipeline.json").read_text())
    (broken / "pipeline.json").write_text(json.dumps({**record, "codec": "descript/dac_44khz"}))
    assert main(["generate", "x", "-o", str(tmp_path / "x.wav"), "--checkpoint", str(broken)]) == 2
    assert "huggingface-cli download descript/dac_44khz" in capsys.readouterr().err
    (broken / "pipeline.json").write_text(json.dumps({**record, "text_encoder": "google/flan-t5-base"}))
    assert main(["generate", "x", "-o", str(tmp_path / "x.wav"), "--checkpoint", str(broken)]) == 2
    assert "google/flan-t5-base" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_codec_and_text_encoder_may_live_inside_the_model_directory(tmp_path, tiny_model_dir):
    import json
    import shutil

    from ssmusic.pipeline import TextToMusic

    portable = tmp_path / "portable"
    shutil.copytree(tiny_model_dir, portable)
    record = json.loads((portable / "pipeline.json").read_text())
    shutil.copytree(record["codec"], portable / "codec")
    (portable / "pipeline.json").write_text(json.dumps({**record, "codec": "codec"}))
    moved = tmp_path / "moved"
    shutil.move(portable, moved)  # found relative to the model directory, not the working directory
    model = TextToMusic.from_pretrained(moved)
    assert model.codec.card == record["card"]
    audio, _ = model.generate(["a tone"], seconds=0.2, seed=0)
    assert audio.shape[0] == 1


def test_prompts_from_a_captions_csv_or_a_text_file(tmp_path, tiny_model_dir, capsys):
    from ssmusic.generate import read_prompts

    csv_path = tmp_path / "captions.csv"
    csv_path.write_text("path,caption,split\na.wav,first,test\nb.wav,second,train\nc.wav,third,test\n")
    assert read_prompts(csv_path) == ["first", "second", "third"]
    assert read_prompts(csv_path, "test") == ["first", "third"]
    (tmp_path / "prompts.txt").write_text("solo piano\n\n a fiddle jig \n")
    assert read_prompts(tmp_path / "prompts.txt") == ["solo piano", "a fiddle jig"]
    (tmp_path / "bad.csv").write_text("path,text\na.wav,x\n")
    with pytest.raises(SsmusicError, match="'caption' or 'prompt' column"):
        read_prompts(tmp_path / "bad.csv")
    with pytest.raises(SsmusicError, match="no prompts in split 'valid'"):
        read_prompts(csv_path, "valid")
    out = tmp_path / "gen"
    assert main(["generate", "--prompts-from", str(csv_path), "--split", "test", "-o", str(out), "--seconds", "0.2",
                 "--checkpoint", str(tiny_model_dir), "--seed", "1"]) == 0
    sidecars = sorted(json.loads(p.read_text())["prompt"] for p in out.glob("*.json"))
    assert sidecars == ["first", "third"]


def test_help_states_the_loaded_models_sampling_defaults(tmp_path, tiny_model_dir, capsys):
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    record = json.loads((model / "pipeline.json").read_text())
    (model / "pipeline.json").write_text(json.dumps({**record, "temperature": 1.2, "top_k": 50, "cfg_scale": 2.5}))
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--checkpoint", str(model), "--help"])
    assert exit_info.value.code == 0
    text = "".join(capsys.readouterr().out.split())  # help wraps long paths at hyphens
    assert f"samplingtemperature(default:1.2,from{model})" in text
    assert "top-ksampling(default:50," in text and "guidancescale(default:2.5," in text
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    from ssmusic.config import PipelineConfig, load_config
    from ssmusic.pipeline import DEFAULT_MODEL_DIR

    shipped = load_config(PipelineConfig, DEFAULT_MODEL_DIR / "pipeline.json")
    assert f"sampling temperature (default: {shipped.temperature:g}, from the shipped model)" in text


def test_compile_flag_decodes_with_the_compiled_step(tmp_path, tiny_model_dir, monkeypatch):
    """--compile hands the LM to ssmusic.model.compiled (whose output tests/model/test_compiled.py checks)."""
    import ssmusic.model.compiled
    from ssmusic.model.lm import MusicLM

    compiled = []
    monkeypatch.setattr(ssmusic.model.compiled, "compile_decode", lambda lm: compiled.append(lm) or lm)
    code = main(["generate", "a tone", "-o", str(tmp_path / "x.wav"), "--seconds", "0.3", "--compile",
                 "--checkpoint", str(tiny_model_dir)])
    assert code == 0 and len(compiled) == 1 and isinstance(compiled[0], MusicLM)
