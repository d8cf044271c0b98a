"""The offline default classifier for the KL metric: multinomial logistic regression on a clip's
mean mel-stats vector (see embeddings.MelStats), predicting a label column of a demo dataset
(default: the instrument, 10 General MIDI programs). Small, transparent, trained in seconds:

    python -m ssmusic.metrics.classifier DEMO_DIR --out ssmusic/assets/classifier

It stands in for PaSST's AudioSet labels, which need weights that cannot be downloaded here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ssmusic.io.atomic import read_json, write_json_atomic
from ssmusic.data.captions import dataset_rows
from ssmusic.errors import SsmusicError
from ssmusic.io.tensors import load_tensors, save_tensors

DEFAULT_CLASSIFIER_DIR = Path(__file__).resolve().parent.parent / "assets" / "classifier"


class LabelClassifier:
    """One class per clip (softmax), or with `multilabel` any set of the classes ('a|b' labels; one
    sigmoid per class, present above 0.5)."""

    def __init__(self, classes: list[str], weight: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor,
                 std: torch.Tensor, label: str, features: str = "mel-stats", multilabel: bool = False) -> None:
        self.classes, self.label, self.features, self.multilabel = classes, label, features, multilabel
        self.weight, self.bias, self.mean, self.std = weight, bias, mean, std

    def probabilities(self, clip_features: np.ndarray) -> np.ndarray:
        """[n, dim] clip features (mean over windows) -> [n, classes]"""
        x = (torch.as_tensor(clip_features, dtype=torch.float32) - self.mean) / self.std
        logits = x @ self.weight.T + self.bias
        return (torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=-1)).numpy()

    def save(self, directory: Path, metrics: dict) -> None:
        save_tensors({"weight": self.weight, "bias": self.bias, "mean": self.mean, "std": self.std},
                     directory / "classifier.safetensors")
        write_json_atomic(directory / "classifier.json", {"label": self.label, "classes": self.classes,
                                                          "features": self.features, "multilabel": self.multilabel,
                                                          **metrics})

    @classmethod
    def load(cls, directory: Path = DEFAULT_CLASSIFIER_DIR) -> "LabelClassifier":
        if not (directory / "classifier.json").is_file():
            raise SsmusicError(f"{directory}: no classifier.json (train one: python -m ssmusic.metrics.classifier "
                               "DEMO_DIR --out DIR)")
        info = read_json(directory / "classifier.json")
        t = load_tensors(directory / "classifier.safetensors")
        features = {"mel-stats clip mean": "mel-stats"}.get(info.get("features"), info.get("features", "mel-stats"))
        return cls(info["classes"], t["weight"], t["bias"], t["mean"], t["std"], info["label"], features,
                   bool(info.get("multilabel", False)))


def fit(features: np.ndarray, labels: list[str], label: str, epochs: int = 300, l2: float = 1e-3,
        seed: int = 0, kind: str = "mel-stats", multilabel: bool = False) -> LabelClassifier:
    """Multinomial logistic regression (L-BFGS, L2 penalty `l2`) on standardised clip features of `kind`;
    `multilabel`: labels are 'a|b' sets, one binary logistic regression per class."""
    torch.manual_seed(seed)
    sets = [v.split("|") for v in labels] if multilabel else None
    classes = sorted({c for s in sets for c in s}) if sets else sorted(set(labels))
    x = torch.as_tensor(features, dtype=torch.float32)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    x = (x - mean) / std
    y = (torch.tensor([[c in s for c in classes] for s in sets], dtype=torch.float32) if sets
         else torch.tensor([classes.index(v) for v in labels]))
    data_loss = torch.nn.functional.binary_cross_entropy_with_logits if sets else torch.nn.functional.cross_entropy
    weight = torch.zeros(len(classes), x.shape[1], requires_grad=True)
    bias = torch.zeros(len(classes), requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=epochs, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = data_loss(x @ weight.T + bias, y) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return LabelClassifier(classes, weight.detach(), bias.detach(), mean, std, label, kind, multilabel)


def clip_features(paths: list[Path], progress: bool = True) -> np.ndarray:
    from tqdm import tqdm

    from ssmusic.io.audio import read_audio
    from ssmusic.metrics.embeddings import MelStats

    model = MelStats()
    return np.stack([model.embed(read_audio(p, model.sample_rate, mono=True)[0][0]).mean(0)
                     for p in tqdm(paths, desc="features", disable=not progress)])


def main() -> None:
    parser = argparse.ArgumentParser(description="fit the offline KL classifier on a demo dataset")
    parser.add_argument("demo_dir", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_CLASSIFIER_DIR)
    parser.add_argument("--label", default="instrument")
    args = parser.parse_args()
    rows = dataset_rows(args.demo_dir) or []
    if not rows or args.label not in rows[0]:
        raise SystemExit(f"{args.demo_dir / 'captions.csv'}: no column {args.label!r}")
    train = [r for r in rows if r["split"] == "train"]
    held = [r for r in rows if r["split"] != "train"]
    features = clip_features([r["path"] for r in rows])
    index = {id(r): i for i, r in enumerate(rows)}
    classifier = fit(features[[index[id(r)] for r in train]], [r[args.label] for r in train], args.label)
    held_x = features[[index[id(r)] for r in held]]
    predicted = classifier.probabilities(held_x).argmax(-1)
    accuracy = float(np.mean([classifier.classes[p] == r[args.label] for p, r in zip(predicted, held)]))
    metrics = {"train_clips": len(train), "heldout_clips": len(held), "heldout_accuracy": round(accuracy, 4),
               "chance": round(1 / len(classifier.classes), 4)}
    args.out.mkdir(parents=True, exist_ok=True)
    classifier.save(args.out, metrics)
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
