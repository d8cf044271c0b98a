"""Training the learned decoder: it learns, its input is what decoding sees, and a resumed run
ends where an uninterrupted one does."""

import csv
import json

import pytest
import soundfile
import torch

from ssmusic.codec.codecs import load_codec
from ssmusic.codec.vocoder import Vocoder
from ssmusic.errors import SsmusicError
from ssmusic.training import vocoder as trainer
from ssmusic.training.vocoder_config import DecoderTrainConfig

TINY = dict(dim=16, intermediate=32, layers=2, kernel=5, lookahead=1)


@pytest.fixture(scope="module")
def tone_dataset(tmp_path_factory):
    """A demo-like dataset: 6 train / 2 valid clips of 1 s (chords of two tones)."""
    directory = tmp_path_factory.mktemp("tones")
    t = torch.arange(22050) / 22050
    rows = []
    for i in range(8):
        wave = 0.2 * torch.sin(2 * torch.pi * 220 * 2 ** (i / 12) * t) + 0.1 * torch.sin(2 * torch.pi * 660 * t)
        soundfile.write(directory / f"c{i}.wav", wave.numpy(), 22050)
        rows.append({"path": f"c{i}.wav", "caption": "tones", "split": "valid" if i >= 6 else "train"})
    with (directory / "captions.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "caption", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return directory


def config(dataset, **kw) -> DecoderTrainConfig:
    return DecoderTrainConfig(**{"demo": str(dataset), "real": False, "steps": 4, "batch_size": 2,
                                 "segment_frames": 16, "lr": 3e-3, "warmup_steps": 1, "eval_every": 4,
                                 "eval_segments": 2, "eval_seconds": 0.5, "checkpoint_every": 2,
                                 "model": TINY, **kw})


def test_input_is_the_dequantised_mel_of_the_first_k_codebooks(tiny_codec_dir):
    codec = load_codec(tiny_codec_dir)
    codes = torch.randint(0, codec.card, (3, codec.n_codebooks, 10))
    k = torch.tensor([1, 2, 1])
    mel = trainer.masked_mel(codec, codes, k)
    for row in range(3):
        assert torch.allclose(mel[row], codec.backend.dequantize(codes[row:row + 1, :int(k[row])])[0])


def test_training_learns_and_resumes_exactly(tone_dataset, tiny_codec_dir, tmp_path, monkeypatch):
    codec = load_codec(tiny_codec_dir, decoder="griffin-lim")
    whole = trainer.train(config(tone_dataset), tmp_path / "whole", codec=codec, progress=False)
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(torch.isfinite(torch.tensor([r["loss"] for r in records])))
    assert set(records[-1]["valid"]) == {"demo_k1", "demo_k2"}

    save = trainer.save_state

    def save_then_stop(run, model, optimizer, step, generator):
        save(run, model, optimizer, step, generator)
        if step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_state", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(config(tone_dataset), tmp_path / "resumed", codec=codec, progress=False)
    monkeypatch.setattr(trainer, "save_state", save)
    resumed = trainer.train(config(tone_dataset), tmp_path / "resumed", codec=codec, progress=False)
    a, b = Vocoder.load(whole).state_dict(), Vocoder.load(resumed).state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    with pytest.raises(SsmusicError, match="other settings"):
        trainer.train(config(tone_dataset, lr=1e-3), tmp_path / "resumed", codec=codec, progress=False)


def test_a_few_steps_lower_the_loss(tone_dataset, tiny_codec_dir, tmp_path):
    codec = load_codec(tiny_codec_dir, decoder="griffin-lim")
    trainer.train(config(tone_dataset, steps=30, eval_every=30, checkpoint_every=30), tmp_path, codec=codec,
                  progress=False)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_stft_loss_is_zero_for_identical_audio_only():
    x = torch.randn(2, 8192)
    assert float(trainer.stft_loss(x, x)) < 1e-6
    assert float(trainer.stft_loss(0.5 * x, x)) > 0.1


def test_install_makes_the_decoder_the_codec_default(tone_dataset, tiny_codec_dir, tmp_path):
    import shutil

    codec_dir = tmp_path / "codec"
    shutil.copytree(tiny_codec_dir, codec_dir)
    checkpoint = trainer.train(config(tone_dataset, steps=2, eval_every=2), tmp_path / "run",
                               codec=load_codec(tiny_codec_dir), progress=False)
    trainer.install(checkpoint, codec_dir, make_default=False)
    assert load_codec(str(codec_dir)).backend.vocoder is None  # installed, not the default
    assert load_codec(str(codec_dir), decoder="vocoder").backend.vocoder is not None
    trainer.install(checkpoint, codec_dir)
    codec = load_codec(str(codec_dir))
    assert codec.backend.config.decoder == "vocoder" and codec.backend.vocoder is not None
    assert load_codec(str(codec_dir), decoder="griffin-lim").backend.vocoder is None
    trained = Vocoder.load(checkpoint)
    codes = torch.randint(0, codec.card, (1, codec.n_codebooks, 12))
    with torch.no_grad():
        expected = trained(codec.backend.dequantize(codes))
    assert (codec.decode(codes)[:, 0] - expected).abs().max() <= 1e-2 * expected.abs().max()  # float16 weights


def test_init_continues_from_another_runs_decoder(tone_dataset, tiny_codec_dir, tmp_path):
    codec = load_codec(tiny_codec_dir)
    first = trainer.train(config(tone_dataset, steps=2, eval_every=2), tmp_path / "first", codec=codec, progress=False)
    second = trainer.train(config(tone_dataset, steps=1, eval_every=1, lr=1e-9, model={}, init=str(first)),
                           tmp_path / "second", codec=codec, progress=False)
    a, b = Vocoder.load(first), Vocoder.load(second)
    assert a.config == b.config  # the shape comes from the initial decoder, not --model
    assert all(torch.allclose(a.state_dict()[k], b.state_dict()[k], atol=1e-6) for k in a.state_dict())
