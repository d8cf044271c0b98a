import json
import shutil

import pytest
import torch

from ssmusic.training import finetune
from ssmusic.cli import main
from ssmusic.errors import SsmusicError
from ssmusic.model.lm import MusicLM
from ssmusic.io.tensors import load_tensors
from ssmusic.training.train import TrainConfig, train

FT = dict(steps=4, batch_size=4, eval_every=2, save_every=2)


def _weights(directory):
    return load_tensors(directory / "model.safetensors")


def _logits(model, seed=3):
    torch.manual_seed(seed)
    codes = torch.randint(0, model.config.card, (2, model.config.n_codebooks, 9))
    text = torch.randn(2, 5, model.config.text_dim)
    with torch.no_grad():
        return model.eval()(codes, text, torch.ones(2, 5, dtype=torch.bool))


def test_init_from_loads_the_weights_and_logs_the_model_before_fine_tuning(tmp_path, tiny_dataset, tiny_model_dir,
                                                                          capsys):
    from ssmusic.data.datasets import CodesDataset
    from ssmusic.training.train import evaluate

    config = TrainConfig(**{**FT, "steps": 1}, lr=1e-9, init_from=str(tiny_model_dir.parent))  # a run directory
    final = train(tiny_dataset, tmp_path / "run", config, progress=False)
    base, tuned = _weights(tiny_model_dir), _weights(final)
    assert set(base) == set(tuned)
    for key in base:  # one step at lr 1e-9: still the init weights
        torch.testing.assert_close(tuned[key], base[key], atol=1e-6, rtol=0)
    torch.manual_seed(0)
    fresh = MusicLM(MusicLM.from_pretrained(tiny_model_dir).config).state_dict()
    assert not torch.allclose(fresh["heads.0.weight"], tuned["heads.0.weight"], atol=1e-3)
    # the architecture and settings come from the model; fine-tuning defaults apply
    saved = json.loads((final / "train_config.json").read_text())
    assert saved["init_from"] == str(tiny_model_dir.parent) and saved["warmup_steps"] == finetune.FINETUNE_WARMUP
    assert json.loads((final / "lm_config.json").read_text()) == json.loads((tiny_model_dir / "lm_config.json").read_text())
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1]
    model = MusicLM.from_pretrained(tiny_model_dir)
    before = evaluate(model, CodesDataset(tiny_dataset, "valid", 1), TrainConfig(batch_size=4), torch.device("cpu"), None)
    assert rows[0]["val_loss"] == pytest.approx(before["val_loss"], abs=1e-5)
    # and says it: before (step 0) and after
    assert f"validation loss {rows[0]['val_loss']:.4f} at step 0 -> {rows[1]['val_loss']:.4f} at step 1" \
        in capsys.readouterr().err


def test_fine_tuning_defaults_and_the_model_sampling_settings(tmp_path, tiny_dataset, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    pipeline = json.loads((model / "pipeline.json").read_text())
    (model / "pipeline.json").write_text(json.dumps({**pipeline, "temperature": 0.7, "cfg_scale": 2.5}))
    final = train(tiny_dataset, tmp_path / "run", TrainConfig(**FT, init_from=str(model)), progress=False)
    saved = json.loads((final / "train_config.json").read_text())
    assert saved["lr"] == finetune.FINETUNE_LR and saved["preset"] == "tiny"
    written = json.loads((final / "pipeline.json").read_text())
    assert (written["temperature"], written["cfg_scale"]) == (0.7, 2.5)


def _run(tmp_path, tiny_dataset, *flags):
    return main(["train", str(tiny_dataset), "--out", str(tmp_path / "refused"), "--steps", "1", *flags])


def test_compatibility_refusals_name_both_sides_before_training(tmp_path, tiny_dataset, tiny_model_dir, capsys):
    assert _run(tmp_path, tiny_dataset, "--init-from", "default") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "codec" in err and "'ssmusic-mel-22k'" in err and "tiny_codec" in err
    assert not (tmp_path / "refused").exists()
    cases = {"text encoder": ("pipeline.json", "text_encoder", "google/flan-t5-base"),
             "card": ("lm_config.json", "card", 32), "codebooks": ("lm_config.json", "n_codebooks", 3)}
    for what, (name, key, value) in cases.items():
        model = tmp_path / what.replace(" ", "_")
        shutil.copytree(tiny_model_dir, model)
        record = json.loads((model / name).read_text())
        (model / name).write_text(json.dumps({**record, key: value}))
        assert _run(tmp_path, tiny_dataset, "--init-from", str(model)) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"dataset {what}" in err and repr(value) in err, err
    assert _run(tmp_path, tiny_dataset, "--init-from", str(tmp_path / "nowhere")) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_architecture_flags_that_contradict_the_model_are_refused(tmp_path, tiny_dataset, tiny_model_dir, capsys):
    for flags, message in ((["--backbone", "transformer"], "--backbone 'transformer' contradicts the model's backbone 'simba'"),
                           (["--conditioning", "cross"], "--conditioning 'cross' contradicts"),
                           (["--codebooks", "2"], "--codebooks 2 contradicts the model's n_codebooks 1"),
                           (["--model", "d_model=64"], "--model d_model=64 contradicts the model's d_model 32"),
                           (["--preset", "small"], "--preset small: --init-from takes the architecture"),
                           (["--lora-rank", "2", "--freeze", "text"], "--freeze: with --lora-rank"),
                           (["--freeze", "everything"], "--freeze: unknown part 'everything'")):
        assert _run(tmp_path, tiny_dataset, "--init-from", str(tiny_model_dir), *flags) == 2
        assert message in capsys.readouterr().err
    assert _run(tmp_path, tiny_dataset, "--lora-rank", "4") == 2
    assert "--lora-rank: adapts a pretrained model; pass --init-from" in capsys.readouterr().err
    # flags that agree with the model, and a new dropout, are fine
    assert _run(tmp_path, tiny_dataset, "--init-from", str(tiny_model_dir), "--backbone", "simba", "--preset", "tiny",
                "--model", "dropout=0.2", "--batch-size", "2") == 0
    assert json.loads((tmp_path / "refused" / "final" / "lm_config.json").read_text())["dropout"] == 0.2


def test_freeze_keeps_those_parts(tmp_path, tiny_dataset, tiny_model_dir):
    config = TrainConfig(**FT, lr=1e-2, init_from=str(tiny_model_dir), freeze="embeddings,text")
    base, tuned = _weights(tiny_model_dir), _weights(train(tiny_dataset, tmp_path / "run", config, progress=False))
    for key in base:
        frozen = key.split(".")[0] in ("embed", *finetune.TEXT_MODULES)
        assert torch.equal(base[key], tuned[key]) == frozen, key


def test_lora_trains_adapters_only_and_merged_model_equals_model_plus_adapters(tmp_path, tiny_dataset, tiny_model_dir):
    config = TrainConfig(**FT, lr=2e-2, init_from=str(tiny_model_dir), lora_rank=4)
    final = train(tiny_dataset, tmp_path / "run", config, progress=False)
    assert sorted(p.name for p in (final / "adapter").iterdir()) == ["adapter_config.json", "adapter_model.safetensors",
                                                                   "base.json"]
    base, merged = _weights(tiny_model_dir), _weights(final)
    assert set(base) == set(merged)  # a plain model directory
    targets = finetune.lora_targets(MusicLM.from_pretrained(final))
    for key in base:  # only the weight matrices of the decoder's linear layers moved (not their biases)
        assert torch.equal(base[key], merged[key]) != (key.endswith(".weight") and key[:-7] in targets), key
    with_adapters = finetune.with_adapters(tiny_model_dir, final / "adapter")
    expected = _logits(with_adapters.base_model.model)
    torch.testing.assert_close(_logits(MusicLM.from_pretrained(final)), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(_logits(MusicLM.from_pretrained(tiny_model_dir)), expected, atol=1e-3)
    # adapters + base -> a model directory generate loads, the same as the run's
    out = finetune.merge_adapters(tiny_model_dir, final / "adapter", tmp_path / "merged")
    again = _weights(out)
    assert all(torch.allclose(again[k], merged[k], atol=1e-6) for k in merged)
    assert (out / "pipeline.json").is_file()
    assert main(["export", str(final / "adapter"), "--lora-base", str(tiny_model_dir), "--out", str(tmp_path / "e")]) == 0
    again = _weights(tmp_path / "e")
    assert all(torch.allclose(again[k], merged[k], atol=1e-6) for k in merged)


@pytest.mark.parametrize("lora", [0, 4])
def test_resume_of_a_fine_tune_is_exact(tmp_path, tiny_dataset, tiny_model_dir, lora):
    config = TrainConfig(**FT, lr=1e-2, init_from=str(tiny_model_dir), lora_rank=lora)
    straight = train(tiny_dataset, tmp_path / "a", config, progress=False)
    train(tiny_dataset, tmp_path / "b", config, stop_after=2, progress=False)
    resumed = train(tiny_dataset, tmp_path / "b", TrainConfig(steps=0), resume=True, progress=False)
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    if lora:
        a, b = (load_tensors(p / "adapter" / "adapter_model.safetensors") for p in (straight, resumed))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [0, 1, 2, 3, 4]


def test_lora_resume_refuses_changed_base_weights(tmp_path, tiny_dataset, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    config = TrainConfig(**FT, init_from=str(model), lora_rank=2)
    train(tiny_dataset, tmp_path / "run", config, stop_after=2, progress=False)
    weights = _weights(model)
    weights["heads.0.weight"] = weights["heads.0.weight"] + 1
    from ssmusic.io.tensors import save_tensors

    save_tensors(weights, model / "model.safetensors")
    with pytest.raises(SsmusicError, match="other base weights"):
        train(tiny_dataset, tmp_path / "run", TrainConfig(steps=0), resume=True, progress=False)


def test_cli_fine_tune_with_lora_then_generate(tmp_path, tiny_dataset, tiny_model_dir, capsys):
    import soundfile

    run = tmp_path / "run"
    assert main(["train", str(tiny_dataset), "--init-from", str(tiny_model_dir), "--out", str(run), "--steps", "2",
                 "--batch-size", "2", "--lora-rank", "2"]) == 0
    out = capsys.readouterr().out
    assert "trained" in out and str(tiny_model_dir) in out
    assert json.loads((run / "final" / "train_config.json").read_text())["lr"] == finetune.LORA_LR
    wav = tmp_path / "x.wav"
    assert main(["generate", "a tone", "--checkpoint", str(run), "-o", str(wav), "--seconds", "0.5", "--seed", "0"]) == 0
    assert soundfile.info(str(wav)).frames > 0


def test_init_from_an_imported_ssmttm_model(tmp_path, tiny_dataset, tiny_codec_dir):
    from test_ssmttm import lightning_checkpoint, make_reference, release_config

    from ssmusic.training import ssmttm

    reference = make_reference()
    torch.save(lightning_checkpoint(reference), tmp_path / "simba.ckpt")
    (tmp_path / "config.json").write_text(json.dumps(release_config(reference)))
    imported = ssmttm.import_checkpoint(tmp_path / "simba.ckpt", tmp_path / "config.json", tmp_path / "model",
                                        text_encoder="all-MiniLM-L6-v2", codec=tiny_codec_dir)
    final = train(tiny_dataset, tmp_path / "run", TrainConfig(**FT, init_from=str(imported)), progress=False)
    pipeline = json.loads((final / "pipeline.json").read_text())
    assert (pipeline["min_text_tokens"], pipeline["min_text_pad_id"]) == (60, 1)  # the model's caption padding kept
    assert MusicLM.from_pretrained(final).config == MusicLM.from_pretrained(imported).config


def _ddp_lora_worker(rank, port, data, model, out):
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank))
    torch.set_num_threads(1)
    config = TrainConfig(steps=3, batch_size=2, eval_every=100, save_every=100, lr=1e-2, caption_dropout=0.0,
                         device="cpu", init_from=model, lora_rank=2, model_overrides={"dropout": 0.0})
    train(data, out, config, progress=False)
    torch.distributed.destroy_process_group()


def test_lora_fine_tune_under_ddp_matches_one_process(tmp_path, tiny_dataset, tiny_model_dir):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_lora_worker, args=(port, str(tiny_dataset), str(tiny_model_dir),
                                                        str(tmp_path / "ddp")), nprocs=2)
    single = TrainConfig(steps=3, batch_size=4, eval_every=100, save_every=100, lr=1e-2, caption_dropout=0.0,
                         device="cpu", init_from=str(tiny_model_dir), lora_rank=2, model_overrides={"dropout": 0.0})
    train(tiny_dataset, tmp_path / "one", single, progress=False)
    a, b = (load_tensors(tmp_path / run / "final" / "adapter" / "adapter_model.safetensors") for run in ("ddp", "one"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=2e-4, rtol=1e-3)
    assert not torch.allclose(a[next(k for k in a if "lora_B" in k)], torch.zeros(1))


def _with_tempo_captions(tiny_dataset, tmp_path):
    """tiny_dataset with a BPM in every caption (the cached text embeddings stay: the clock reads the words)."""
    data = tmp_path / "data_bpm"
    shutil.copytree(tiny_dataset, data)
    for split in ("train", "valid", "test"):
        lines = (data / split / "captions.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        for i, row in enumerate(rows):
            row["caption"] += f", {80 + 20 * (i % 4)} BPM, {'CDEF'[i % 4]} {('major', 'minor')[i % 2]}"
        (data / split / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def test_controls_train_from_scratch_and_are_added_by_a_fine_tune(tmp_path, tiny_dataset):
    data = _with_tempo_captions(tiny_dataset, tmp_path)
    frame_rate = json.loads((data / "manifest.json").read_text())["frame_rate"]
    overrides = {"d_model": 32, "n_layers": 2, "headdim": 16, "d_state": 8}
    base = TrainConfig(preset="tiny", conditioning="cross", steps=3, batch_size=4, eval_every=100, save_every=100,
                       warmup_steps=1, model_overrides=overrides, device="cpu")
    plain = train(data, tmp_path / "plain", base, progress=False)
    clocked = train(data, tmp_path / "clocked", TrainConfig(**{**base.__dict__, "tempo_clock": True,
                                                                "key_embedding": True}), progress=False)
    lm_config = json.loads((clocked / "lm_config.json").read_text())
    assert lm_config["tempo_clock_fps"] == frame_rate and lm_config["key_embedding"] is True
    for name in ("clock.proj.weight", "key_embed.tonic.weight", "key_embed.mode.weight"):
        assert _weights(clocked)[name].abs().sum() > 0  # the captions' BPM and key reached them
        assert name not in _weights(plain)
    # generating, the model hears what each prompt names, unless told not to
    from ssmusic.model.controls import control_rows
    from ssmusic.pipeline import TextToMusic

    pipeline, prompts = TextToMusic.from_pretrained(clocked), ["a tone, 96 BPM, D minor", "a tone"]
    heard = pipeline._lm_arguments(prompts, 1.0, None, None)["controls"]
    assert torch.equal(heard, control_rows(prompts)) and heard[0].tolist() == [96, 4, 0, 2, 1]
    assert pipeline.describe()["hears_controls"] is True
    pipeline.hear_controls = False
    assert "controls" not in pipeline._lm_arguments(prompts, 1.0, None, None)
    assert pipeline.describe()["hears_controls"] is False
    # a fine-tune adds a clock to the plain model: it starts at zero, so step 0 is the model as it was
    tuned = train(data, tmp_path / "tuned", TrainConfig(steps=1, batch_size=4, eval_every=1, save_every=100,
                                                        lr=1e-9, init_from=str(plain), tempo_clock=True,
                                                        key_embedding=True), progress=False)
    weights, before = _weights(tuned), _weights(plain)
    added = {"clock.proj.weight", "key_embed.tonic.weight", "key_embed.mode.weight"}
    assert set(weights) == set(before) | added
    assert all(weights[name].abs().max() < 1e-6 for name in added)
    rows = [json.loads(line) for line in (tmp_path / "tuned" / "metrics.jsonl").read_text().splitlines()]
    plain_rows = [json.loads(line) for line in (tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["val_loss"] == pytest.approx([r for r in plain_rows if "val_loss" in r][-1]["val_loss"], abs=1e-5)


def test_training_crops_tell_the_clock_where_they_start(tiny_dataset):
    from ssmusic.data.datasets import CodesDataset, load_batch

    dataset = CodesDataset(tiny_dataset, "train", 1)
    dataset.captions = [c + ", 100 BPM in F# minor" for c in dataset.captions]
    codes, _, _, tempo = load_batch(dataset, [0, 1, 2], torch.device("cpu"), 10, torch.Generator().manual_seed(0), None)
    whole, _, _, _ = load_batch(dataset, [0, 1, 2], torch.device("cpu"), 0, None, None)
    assert tempo[:, 0].eq(100).all() and tempo[:, 2].gt(0).any() and tempo[:, 3:].eq(torch.tensor([6.0, 1])).all()
    for row in range(3):  # each window is the clip from the frame its tempo row names
        start = int(tempo[row, 2])
        assert torch.equal(codes[row], whole[row, :, start:start + 10])
