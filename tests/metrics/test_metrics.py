import json

import numpy as np
import pytest
import scipy.linalg
import soundfile

from ssmusic.cli import main
from ssmusic.errors import SsmusicError
from ssmusic.io.audio import read_audio
from ssmusic.metrics.classifier import LabelClassifier, fit
from ssmusic.metrics.embeddings import MelStats
from ssmusic.metrics.evaluate import evaluate
from ssmusic.metrics.frechet import frechet_distance, frechet_distance_of, gaussian
from ssmusic.metrics.kl import kl_divergence, paired_kl


def scipy_reference(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1.astype(np.float64) @ s2.astype(np.float64))
    covmean = covmean.real
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("dim,n", [(4, 500), (16, 2000), (32, 300)])
def test_frechet_matches_float64_scipy_reference(dim, n):
    rng = np.random.default_rng(dim)
    a = rng.standard_normal((n, dim)) @ rng.standard_normal((dim, dim)) + rng.standard_normal(dim)
    b = rng.standard_normal((n, dim)) @ rng.standard_normal((dim, dim)) * 0.5 + 1.0
    ours = frechet_distance_of(a, b)
    reference = scipy_reference(*gaussian(a), *gaussian(b))
    assert abs(ours - reference) / abs(reference) < 1e-6
    assert frechet_distance_of(a, a) == pytest.approx(0.0, abs=1e-6 * np.trace(np.cov(a, rowvar=False)))


def test_frechet_is_stable_with_few_samples():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 64)), rng.standard_normal((5, 64)) + 0.1
    with pytest.warns(UserWarning, match="rank-deficient"):
        value = frechet_distance_of(a, b)
    assert np.isfinite(value) and value >= 0
    mu, cov = np.zeros(3), np.diag([1.0, 0.0, 0.0])  # singular covariances stay finite
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(SsmusicError):
        frechet_distance_of(rng.standard_normal((1, 4)), a)


def test_kl_of_identical_distributions_is_zero():
    p = np.random.default_rng(1).dirichlet(np.ones(10), size=5)
    assert np.allclose(kl_divergence(p, p), 0.0, atol=1e-12)
    q = np.roll(p, 1, axis=-1)
    assert (kl_divergence(p, q) > 0).all()
    value, pairs = paired_kl({"a": p[0], "b": p[1]}, {"a": p[0], "b": p[1], "c": p[2]})
    assert pairs == 2 and value == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(SsmusicError, match="shares a caption"):
        paired_kl({"a": p[0]}, {"z": p[0]})


def _tone_dir(directory, freqs, with_sidecars, captions_csv=False):
    directory.mkdir()
    t = np.arange(22050 * 2) / 22050
    rows = []
    for i, f in enumerate(freqs):
        soundfile.write(directory / f"c{i}.wav", 0.3 * np.sin(2 * np.pi * f * t), 22050)
        caption = f"tone {i % 3}"
        if with_sidecars:
            (directory / f"c{i}.json").write_text(json.dumps({"prompt": caption}))
        rows.append(f"c{i}.wav,{caption},{'test' if i % 2 else 'train'}")
    if captions_csv:
        (directory / "captions.csv").write_text("path,caption,split\n" + "\n".join(rows) + "\n")
    return directory


def test_evaluate_end_to_end_with_the_offline_defaults(tmp_path, capsys):
    features = np.random.default_rng(0).standard_normal((30, 128))
    labels = ["a" if x[0] > 0 else "b" for x in features]
    classifier = fit(features, labels, "instrument")
    classifier.save(tmp_path / "clf", {"heldout_accuracy": 1.0})
    assert LabelClassifier.load(tmp_path / "clf").classes == ["a", "b"]
    gen = _tone_dir(tmp_path / "gen", [220, 330, 440, 550, 660, 770], with_sidecars=True)
    ref = _tone_dir(tmp_path / "ref", [220, 330, 440, 550, 660, 770, 880, 990], with_sidecars=False, captions_csv=True)
    results = evaluate(gen, ref, ["fad", "kl", "clap"], split="test", cache_dir=tmp_path / "cache",
                       classifier_dir=tmp_path / "clf", progress=False)
    assert results["n_reference"] == 4 and results["kl"]["pairs"] == 3
    # FAD is the Fréchet distance of the windows' embeddings: recompute it from the files themselves
    # (all 6 generated, only the 4 test-split references) with the float64 scipy reference
    stats = MelStats()

    def windows(paths):
        return np.concatenate([stats.embed(read_audio(p, stats.sample_rate, mono=True)[0][0]) for p in paths])

    gen_windows = windows(sorted(gen.glob("*.wav")))
    ref_windows = windows([ref / f"c{i}.wav" for i in (1, 3, 5, 7)])
    expected = scipy_reference(*gaussian(gen_windows), *gaussian(ref_windows))
    assert results["fad"]["windows"] == [len(gen_windows), len(ref_windows)]
    assert results["fad"]["value"] == pytest.approx(expected, rel=1e-5) and expected > 1.0
    assert "skipped" in results["clap"]
    same = evaluate(ref, ref, ["fad"], cache_dir=tmp_path / "cache", progress=False)
    assert same["fad"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert any((tmp_path / "cache").rglob("*.npy"))  # embeddings are cached per file


def test_evaluate_errors(tmp_path, capsys):
    gen = _tone_dir(tmp_path / "gen", [220, 330, 440], with_sidecars=True)
    with pytest.raises(SsmusicError, match="unknown"):
        evaluate(gen, gen, ["fid"], progress=False)
    with pytest.raises(SsmusicError, match="not a directory"):
        evaluate(gen, tmp_path / "missing", ["fad"], progress=False)
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", str(tmp_path / "empty"), "--reference", str(gen), "--metrics", "fad"]) == 2
    assert "no audio files" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("not a folder")  # refused before the clips are judged, not after
    assert main(["evaluate", str(gen), "--reference", str(gen), "--metrics", "fad", "--out",
                 str(tmp_path / "a_file" / "e.json")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "a_file is not a directory" in err and err.count("\n") == 1
    with pytest.raises(SsmusicError, match="huggingface-cli download laion/larger_clap_music"):
        evaluate(gen, gen, ["clap"], clap="laion/larger_clap_music", progress=False)
    with pytest.raises(SsmusicError, match="vggish"):
        evaluate(gen, gen, ["fad"], embedding="vggish", progress=False)


def test_unpaired_kl_is_skipped_and_only_no_metric_at_all_fails(tmp_path):
    gen = _tone_dir(tmp_path / "gen", [220, 330, 440], with_sidecars=True)
    ref = _tone_dir(tmp_path / "ref", [550, 660, 770], with_sidecars=False)  # no captions: nothing pairs
    results = evaluate(gen, ref, ["fad", "kl"], cache_dir=tmp_path / "cache", progress=False)
    assert results["fad"]["value"] > 0
    assert "no generated prompt matches a reference caption" in results["kl"]["skipped"]
    with pytest.raises(SsmusicError, match=r"no metric could be computed \(kl: no generated prompt.*clap: no CLAP"):
        evaluate(gen, ref, ["kl", "clap"], cache_dir=tmp_path / "cache", progress=False)


def test_frechet_interval_is_left_out_when_a_set_is_too_small_to_jackknife():
    from ssmusic.metrics.frechet import frechet_with_interval

    rng = np.random.default_rng(0)
    tiny = frechet_with_interval([rng.standard_normal((1, 3)) for _ in range(2)], [rng.standard_normal((4, 3))] * 3)
    assert "ci95" not in tiny and tiny["interval"].startswith("none") and tiny["value"] >= 0
    enough = frechet_with_interval([rng.standard_normal((4, 3)) for _ in range(5)], [rng.standard_normal((4, 3)) for _ in range(5)])
    assert enough["ci95"][0] <= enough["value"] <= enough["ci95"][1]
