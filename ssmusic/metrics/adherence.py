"""Prompt adherence: does the generated clip have the attribute its prompt asked for?

For an attribute a classifier can judge (the shipped one: the instrument), each generated clip is
labelled from its prompt — the attribute of the reference clip with that caption, or a row of a
labels CSV (`prompt,<attribute>`) for prompts that are not dataset captions — and the classifier's
prediction on the clip is compared with it. The accuracy is reported beside its ceiling (the same
classifier on the real clips of the reference split: what a perfect generator would score) and
chance (one over the number of classes).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ssmusic.data.captions import read_csv
from ssmusic.errors import SsmusicError


def read_labels(path: str | Path) -> dict[str, dict[str, str]]:
    """A CSV with a `prompt` column and one column per attribute -> prompt -> {attribute: value}."""
    path = Path(path)
    if not path.is_file():
        raise SsmusicError(f"{path}: no such labels file (expected a CSV with columns prompt,<attribute>...)")
    _, rows = read_csv(path)
    if not rows or "prompt" not in rows[0]:
        raise SsmusicError(f"{path}: expected a header with a 'prompt' column and attribute columns "
                           "(e.g. prompt,instrument)")
    labels: dict[str, dict[str, str]] = {}
    for line, row in enumerate(rows, start=2):
        prompt = (row.pop("prompt") or "").strip()
        if not prompt:
            raise SsmusicError(f"{path}: line {line}: empty prompt")
        labels[prompt] = {k: v for k, v in row.items() if k and v}
    return labels


def label_accuracy(probabilities: np.ndarray, labels: list[str], classes: list[str]) -> float:
    """Share of rows whose most probable class is their label."""
    if len(labels) != len(probabilities):
        raise SsmusicError(f"adherence: {len(probabilities)} predictions for {len(labels)} labels")
    predicted = [classes[i] for i in np.asarray(probabilities).argmax(-1)]
    return float(np.mean([p == y for p, y in zip(predicted, labels)])) if labels else float("nan")


def adherence(classifier, gen_prompts: list[str | None], gen_probabilities: np.ndarray,
              prompt_labels: dict[str, str], ref_labels: list[str | None],
              ref_probabilities: np.ndarray | None) -> dict:
    """Accuracy of `classifier` on generated clips against the label their prompt names.

    gen_prompts[i] / gen_probabilities[i]: a generated clip's prompt and the classifier's output;
    prompt_labels: prompt -> expected class; ref_labels / ref_probabilities: the reference clips'
    true classes (None where unknown) and outputs, for the ceiling. Prompts without a label are left
    out and counted; a result with no labelled clip says why instead of a number."""
    attribute, classes = classifier.label, list(classifier.classes)
    unknown = sorted({v for v in prompt_labels.values() if v not in classes})
    if unknown:
        raise SsmusicError(f"adherence: {attribute} label(s) {unknown} are not classes of the classifier "
                           f"({classes})")
    keep = [i for i, p in enumerate(gen_prompts) if p is not None and p in prompt_labels]
    result: dict = {"attribute": attribute, "chance": round(1.0 / len(classes), 4), "classes": len(classes),
                    "labelled": len(keep), "unlabelled": len(gen_prompts) - len(keep)}
    if not keep:
        return {"skipped": f"no generated prompt has a known {attribute} (prompts must be captions of the "
                           f"reference or rows of --labels CSV with a {attribute} column)", **result}
    probabilities = np.asarray(gen_probabilities)[keep]
    labels = [prompt_labels[gen_prompts[i]] for i in keep]
    result["value"] = round(label_accuracy(probabilities, labels, classes), 4)
    result.update(_interval(result["value"], len(keep)))
    predicted = Counter(classes[i] for i in probabilities.argmax(-1))
    top, count = predicted.most_common(1)[0]
    result["most_predicted"] = {"class": top, "share": round(count / len(keep), 4)}
    known = [i for i, y in enumerate(ref_labels) if y is not None]
    if ref_probabilities is None or not known:
        result["ceiling"] = None
        result["ceiling_note"] = f"the reference has no {attribute} column"
    else:
        result["ceiling"] = round(label_accuracy(np.asarray(ref_probabilities)[known],
                                                 [ref_labels[i] for i in known], classes), 4)
        result["ceiling_clips"] = len(known)
        result["ceiling_ci95"] = _interval(result["ceiling"], len(known))["ci95"]
    return result


def _interval(value: float, n: int) -> dict:
    from ssmusic.metrics.statistics import WILSON, wilson_interval

    low, high = wilson_interval(round(value * n), n)
    return {"n": n, "ci95": [round(low, 4), round(high, 4)], "interval": WILSON}
