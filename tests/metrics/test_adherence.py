import json

import numpy as np
import pytest
import soundfile

from ssmusic.errors import SsmusicError
from ssmusic.metrics.adherence import adherence, label_accuracy, read_labels
from ssmusic.metrics.classifier import clip_features, fit
from ssmusic.metrics.evaluate import evaluate

SR = 22050


class _Classifier:
    label, classes = "instrument", ["flute", "organ", "piano", "violin"]


def one_hot(names):
    return np.eye(4)[[_Classifier.classes.index(n) for n in names]]


def test_accuracy_ceiling_and_chance_on_known_predictions():
    prompts = ["p0", "p1", "p2", "p3", "unlabelled"]
    labels = {"p0": "flute", "p1": "organ", "p2": "piano", "p3": "violin"}
    predicted = one_hot(["flute", "organ", "organ", "organ", "piano"])
    result = adherence(_Classifier, prompts, predicted, labels, ["flute", "piano", None], one_hot(["flute", "organ", "violin"]))
    assert result["value"] == 0.5 and result["labelled"] == 4 and result["unlabelled"] == 1
    assert result["chance"] == 0.25 and result["most_predicted"] == {"class": "organ", "share": 0.75}
    assert result["ceiling"] == 0.5 and result["ceiling_clips"] == 2  # the None reference label is left out


def test_a_generator_that_ignores_its_prompt_scores_chance():
    prompts = [f"p{i}" for i in range(40)]
    labels = {p: _Classifier.classes[i % 4] for i, p in enumerate(prompts)}
    constant = one_hot(["piano"] * 40)
    result = adherence(_Classifier, prompts, constant, labels, [], None)
    assert result["value"] == 0.25 == result["chance"] and result["ceiling"] is None


def test_unknown_classes_and_unlabelled_prompts():
    with pytest.raises(SsmusicError, match="banjo"):
        adherence(_Classifier, ["a"], one_hot(["piano"]), {"a": "banjo"}, [], None)
    result = adherence(_Classifier, ["a", None], one_hot(["piano", "flute"]), {}, [], None)
    assert "value" not in result and "--labels" in result["skipped"]
    with pytest.raises(SsmusicError, match="2 labels"):
        label_accuracy(one_hot(["piano"]), ["piano", "flute"], _Classifier.classes)


def test_read_labels(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("prompt,instrument\nsolo piano,piano\na fiddle jig,violin\n")
    assert read_labels(path) == {"solo piano": {"instrument": "piano"}, "a fiddle jig": {"instrument": "violin"}}
    path.write_text("text,instrument\nx,piano\n")
    with pytest.raises(SsmusicError, match="'prompt' column"):
        read_labels(path)
    with pytest.raises(SsmusicError, match="no such labels file"):
        read_labels(tmp_path / "missing.csv")


def _tone(path, freq, seconds=2.0):
    t = np.arange(int(SR * seconds)) / SR
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * freq * t), SR)


@pytest.fixture()
def low_high(tmp_path):
    """Reference clips labelled low/high pitch, a classifier fitted on them, and generated clips."""
    ref = tmp_path / "ref"
    ref.mkdir()
    rows = ["path,caption,pitch,split"]
    freqs = {"low": [110, 130, 150, 170], "high": [1800, 2100, 2400, 2700]}
    for label, values in freqs.items():
        for i, f in enumerate(values):
            _tone(ref / f"{label}{i}.wav", f)
            rows.append(f"{label}{i}.wav,a {label} tone number {i},{label},test")
    (ref / "captions.csv").write_text("\n".join(rows) + "\n")
    paths = sorted(ref.glob("*.wav"))
    clf = fit(clip_features(paths, progress=False), [p.stem[:-1] for p in paths], "pitch")
    clf.save(tmp_path / "clf", {})
    return ref, tmp_path / "clf"


def _generated(directory, clips):
    directory.mkdir()
    for i, (prompt, freq) in enumerate(clips):
        _tone(directory / f"g{i}.wav", freq)
        (directory / f"g{i}.json").write_text(json.dumps({"prompt": prompt}))
    return directory


def test_evaluate_reports_adherence_from_captions_and_a_labels_csv(tmp_path, low_high, capsys):
    ref, clf = low_high
    good = _generated(tmp_path / "good", [("a low tone number 0", 120), ("a high tone number 1", 2200)])
    result = evaluate(good, ref, ["adherence"], split="test", classifier_dir=clf, cache_dir=tmp_path / "c",
                      progress=False)["adherence"]
    assert result["value"] == 1.0 and result["ceiling"] == 1.0 and result["chance"] == 0.5
    wrong = _generated(tmp_path / "wrong", [("a low tone number 0", 2200), ("a high tone number 1", 120)])
    result = evaluate(wrong, ref, ["adherence"], classifier_dir=clf, cache_dir=tmp_path / "c",
                      progress=False)["adherence"]
    assert result["value"] == 0.0
    free = _generated(tmp_path / "free", [("a deep rumble", 120), ("a whistle", 2500), ("no label", 2500)])
    (tmp_path / "labels.csv").write_text("prompt,pitch\na deep rumble,low\na whistle,high\n")
    result = evaluate(free, ref, ["adherence"], classifier_dir=clf, cache_dir=tmp_path / "c",
                      labels=tmp_path / "labels.csv", progress=False)["adherence"]
    assert result["value"] == 1.0 and result["labelled"] == 2 and result["unlabelled"] == 1
