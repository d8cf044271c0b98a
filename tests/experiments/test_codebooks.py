import csv
import json
import math

import numpy as np
import pytest
import soundfile
import torch

from ssmusic.cli import main
from ssmusic.experiments.codebooks import codebook_sweep
from ssmusic.codec.codecs import Codec, load_codec
from ssmusic.errors import SsmusicError

RATE, FREQS = 8000, (200.0, 700.0, 1900.0)  # whole cycles in 1 s: the three sines are orthogonal
BASIS = torch.sin(2 * math.pi * torch.tensor(FREQS)[:, None] * torch.arange(RATE)[None] / RATE)  # [3, N]


class SineRVQ:
    """A codec with a known answer: codebook j holds the amplitude (in 1/100) of sine j, so the first
    k codebooks reconstruct exactly the first k sines of a sum of the three."""
    sample_rate, frame_rate, card, n_codebooks = RATE, 1.0, 1000, 3

    def encode_mono(self, wav):
        return torch.round(2 / RATE * wav @ BASIS.T * 100).long()[:, :, None]  # [B, 3, 1]

    def decode(self, codes):
        amplitudes = codes[:, :, 0].float() / 100  # [B, k]
        return (amplitudes @ BASIS[: codes.shape[1]])[:, None]


def _write_clips(directory, amplitudes, rows):
    directory.mkdir(parents=True, exist_ok=True)
    for i, amps in enumerate(amplitudes):
        soundfile.write(directory / f"c{i}.wav", (torch.tensor(amps) @ BASIS).numpy(), RATE, subtype="FLOAT")
    if rows is not None:
        with (directory / "captions.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


@pytest.fixture(scope="module")
def sine_clips(tmp_path_factory):
    """Four clips: 'low' ones dominated by 200 Hz, 'high' ones by 1900 Hz; a timbre classifier fitted
    on them (perfect on the originals), and captions whose last label is deliberately wrong."""
    from ssmusic.metrics.classifier import fit
    from ssmusic.metrics.embeddings import MelStats
    from ssmusic.io.audio import resample

    root = tmp_path_factory.mktemp("sines")
    amplitudes = [(0.5, 0.2, 0.1), (0.4, 0.1, 0.1), (0.1, 0.2, 0.5), (0.1, 0.1, 0.4)]
    truth = ["low", "low", "high", "high"]
    written = ["low", "low", "high", "low"]  # clip 3 mislabelled: accuracy on originals must be 3/4
    rows = [{"path": f"c{i}.wav", "caption": f"clip {i}", "split": "test", "timbre": y} for i, y in enumerate(written)]
    _write_clips(root / "audio", amplitudes, rows)
    stats = MelStats()
    features = np.stack([stats.embed(resample(torch.tensor(a) @ BASIS, RATE, stats.sample_rate)).mean(0)
                         for a in amplitudes])
    fit(features, truth, "timbre").save(root / "classifier", {})
    return root


def test_sweep_matches_the_known_answer(sine_clips):
    result = codebook_sweep(sine_clips / "audio", Codec(SineRVQ(), "sines"), split="test",
                            classifier_dir=sine_clips / "classifier", progress=False)
    rows = result["per_k"]
    assert [r["k"] for r in rows] == [1, 2, 3] and result["clips"] == 4
    # full-K against itself: exactly zero distance, SI-SNR at the guard's ceiling
    assert rows[-1]["mel_distance_full"] == 0.0 and rows[-1]["si_snr_full"] > 100
    # this codec is lossless at k = K, so the full reconstruction is the original
    assert rows[-1]["mel_distance_original"] < 1e-3 and rows[-1]["si_snr_original"] > 60
    for key in ("mel_distance_original", "mel_distance_full"):
        values = [r[key] for r in rows]
        assert values == sorted(values, reverse=True) and values[0] > values[-1] + 0.1
    # orthogonal sines: SI-SNR of the first k is 10 log10(kept energy / dropped energy), per clip
    amplitudes = np.array([(0.5, 0.2, 0.1), (0.4, 0.1, 0.1), (0.1, 0.2, 0.5), (0.1, 0.1, 0.4)]) ** 2
    for k in (1, 2):
        expected = np.mean(10 * np.log10(amplitudes[:, :k].sum(1) / amplitudes[:, k:].sum(1)))
        assert rows[k - 1]["si_snr_original"] == pytest.approx(expected, abs=0.02)
    # classifier: perfect on the originals, scored against labels of which one is wrong
    assert result["original_classifier_accuracy"] == 0.75 and result["labelled_clips"] == 4
    assert rows[-1]["classifier_accuracy"] == 0.75 and rows[-1]["classifier_agreement"] == 1.0
    last = result["predictions"][3]
    assert (last["path"], last["label"], last["original"], last["by_k"][-1]) == ("c3.wav", "low", "high", "high")
    assert rows[-1]["embedding_cosine"] == pytest.approx(1.0, abs=1e-3)
    assert rows[0]["embedding_cosine"] < rows[-1]["embedding_cosine"]
    assert [r["kbps"] for r in rows] == pytest.approx([k * math.log2(1000) / 1000 for k in (1, 2, 3)], abs=1e-3)
    # the music network judges every k and the controls; lossless k = K is heard as the original
    network = result["network"]["per_k"]
    assert network[-1]["network_instrument_agreement"]["value"] == 1.0
    assert network[-1]["network_cosine"]["value"] == pytest.approx(1.0, abs=1e-3)
    controls = {c["control"]: c for c in result["controls"]}
    assert list(controls) == ["first codebook from another clip", "first codebook constant", "random tokens"]
    assert all(c["network_tag_kl"]["n"] == 4 for c in controls.values())
    # random tokens are not the clips: the judge that can fail does (cosine and KL far from k = K)
    assert controls["random tokens"]["network_cosine"]["value"] < network[-1]["network_cosine"]["value"] - 0.1
    assert controls["random tokens"]["network_tag_kl"]["value"] > network[-1]["network_tag_kl"]["value"] + 0.1


def test_sweep_rejects_labels_the_classifier_does_not_know(sine_clips, tmp_path):
    rows = [{"path": "c0.wav", "caption": "x", "timbre": "middle"}]
    _write_clips(tmp_path, [(0.5, 0.2, 0.1)], rows)
    with pytest.raises(SsmusicError, match="'middle'"):
        codebook_sweep(tmp_path, Codec(SineRVQ(), "sines"), classifier_dir=sine_clips / "classifier", progress=False)


def test_an_unreadable_file_is_named_and_skipped(sine_clips, tmp_path, capsys):
    """As `prepare` does (one reader, io.audio.read_or_skip): the others are measured, labels stay with
    their clips, and the result lists what was skipped and why."""
    rows = [{"path": "c0.wav", "caption": "a", "timbre": "low"}, {"path": "broken.wav", "caption": "b", "timbre": "low"},
            {"path": "c1.wav", "caption": "c", "timbre": "high"}]
    _write_clips(tmp_path, [(0.5, 0.2, 0.1), (0.1, 0.2, 0.5)], rows)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wav")
    result = codebook_sweep(tmp_path, Codec(SineRVQ(), "sines"), classifier_dir=sine_clips / "classifier",
                            progress=False)
    assert result["clips"] == 2 and [p["path"] for p in result["predictions"]] == ["c0.wav", "c1.wav"]
    assert [p["label"] for p in result["predictions"]] == ["low", "high"]
    assert [s["path"] for s in result["skipped"]] == ["broken.wav"] and "cannot read audio" in result["skipped"][0]["reason"]
    assert "skipped broken.wav: " in capsys.readouterr().out
    (tmp_path / "c0.wav").write_bytes(b"")
    (tmp_path / "c1.wav").write_bytes(b"")
    with pytest.raises(SsmusicError, match="none of the 3 audio files could be read"):
        codebook_sweep(tmp_path, Codec(SineRVQ(), "sines"), classifier_dir=sine_clips / "classifier", progress=False)


@pytest.mark.parametrize("kind", ["dac", "encodec"])
def test_sweep_with_a_neural_codec_through_transformers(tmp_path, kind):
    from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel

    if kind == "dac":
        model = DacModel(DacConfig(encoder_hidden_size=8, downsampling_ratios=[2, 4], decoder_hidden_size=16,
                                   n_codebooks=3, codebook_size=32, codebook_dim=4, hidden_size=32, sampling_rate=8000))
    else:
        model = EncodecModel(EncodecConfig(target_bandwidths=[20.0, 40.0], sampling_rate=8000, audio_channels=1,
                                           num_filters=4, upsampling_ratios=[4, 2], codebook_size=32, hidden_size=16,
                                           num_lstm_layers=1, codebook_dim=16))
        with torch.no_grad():  # EnCodec initialises its codebooks to zeros: every code would decode alike
            for layer in model.quantizer.layers:
                layer.codebook.embed.normal_()
    model.save_pretrained(tmp_path / kind)
    _write_clips(tmp_path / "audio", [(0.5, 0.2, 0.1)], None)  # a plain folder: no captions, no labels
    codec = load_codec(str(tmp_path / kind))
    result = codebook_sweep(tmp_path / "audio", codec, progress=False)
    assert len(result["per_k"]) == codec.n_codebooks > 1 and result["per_k"][-1]["mel_distance_full"] == 0.0
    assert result["per_k"][0]["mel_distance_full"] > 0  # fewer codebooks decode to different audio
    assert result["original_classifier_accuracy"] is None and result["labelled_clips"] == 0
    assert result["per_k"][-1]["classifier_agreement"] == 1.0


def test_codebooks_cli_writes_table_json_and_plot(tmp_path, tiny_codec_dir, capsys):
    t = torch.arange(22050) / 22050
    rows = []
    for i, (freq, instrument) in enumerate([(220, "flute"), (330, "piano"), (440, "violin")]):
        soundfile.write(tmp_path / f"t{i}.wav", (0.3 * torch.sin(2 * math.pi * freq * t)).numpy(), 22050)
        rows.append({"path": f"t{i}.wav", "caption": "a tone", "split": "test" if i else "train",
                     "instrument": instrument})
    with (tmp_path / "captions.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "out" / "cb.json"
    assert main(["codebooks", str(tmp_path), "--split", "test", "--codec", tiny_codec_dir, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| k | kbps | mel dist. vs original" in printed and "| original |" in printed
    result = json.loads(out.read_text())
    assert result["clips"] == 2 and [r["k"] for r in result["per_k"]] == [1, 2]
    assert result["command"].startswith("ssmusic") and result["labelled_clips"] == 2
    assert result["per_k"][1]["mel_distance_full"] == 0.0 < result["per_k"][1]["mel_distance_original"]
    table = out.with_suffix(".md").read_text().split("\n\n")
    assert table[0].count("\n") == 4  # header, rule, k = 1, 2, original
    assert table[1].count("| control:") == 3 and "music network" in table[1]
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.parent.glob(".*"))  # no temp files left behind
    assert main(["codebooks", str(tmp_path), "--out", str(tmp_path / "cb.txt")]) == 2
    assert "expected a .json path" in capsys.readouterr().err
    (tmp_path / "plain").mkdir()
    soundfile.write(tmp_path / "plain" / "a.wav", (0.3 * torch.sin(2 * math.pi * 220 * t)).numpy(), 22050)
    assert main(["codebooks", str(tmp_path / "plain"), "--split", "test", "--out", str(tmp_path / "p.json")]) == 2
    assert "has no 'split' column" in capsys.readouterr().err


def test_an_unwritable_out_is_refused_before_any_clip_is_read(tmp_path, capsys, monkeypatch):
    from ssmusic.experiments import codebooks

    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setattr(codebooks, "codebook_sweep", lambda *args: pytest.fail("the sweep ran first"))
    assert main(["codebooks", str(tmp_path), "--out", str(tmp_path / "a_file" / "cb.json")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "a_file is not a directory" in err and err.count("\n") == 1
