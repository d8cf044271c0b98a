"""The attribute judge of demo data v2 (ensembles, drums on a share of clips): does a generated clip
have the drums (or no drums) and the melody instrument its prompt asked for?

Each attribute is a small logistic regression (classifier.LabelClassifier) on a clip's features,
fitted on the real clips of the train split of demo data v2 only (`python -m
ssmusic.metrics.attribute_fit`, which also chose each judge's features on the valid split):

- `drums`: present or absent (captions.csv column `drums`, yes/no);
- `melody_instrument`: the melody's General MIDI instrument (column `melody_instrument`);
- `melody_family`: its General MIDI family (piano, organ, guitar, reed, ...; from the melody's
  program in `gm_programs`/`roles`), for when the instrument itself is too fine a question;
- `instruments`: the ensemble, every instrument of the clip (column `instruments`, 'a|b'), one
  binary logistic regression per instrument: a clip is right when the set heard is the set named
  (`value`), and, more leniently, when every named instrument is heard (`all_named_heard`).

Features (cached per file like every judge's): `musicnn` is the music network's 200-d penultimate
layer and its 50 tag probabilities, averaged over 3 s patches (the same cached readings the music
judges use); `mel-stats` the mean of the mel-statistics windows; `musicnn+mel-stats` both.

In `ssmusic evaluate`, a generated clip whose prompt is a reference caption is labelled from that
caption's row, and the judge's accuracy is reported with n and a Wilson interval beside its ceiling
(the same judge on the real clips of the evaluated split) and the ratio generated / ceiling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssmusic.errors import SsmusicError

DEFAULT_ATTRIBUTE_DIR = Path(__file__).resolve().parent.parent / "assets" / "attributes"
FEATURE_PARTS = ("musicnn", "mel-stats")
FEATURES = ("musicnn", "mel-stats", "musicnn+mel-stats")
GM_FAMILIES = ("piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
               "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive", "sound effects")
# A clip whose loudest mel band averages below this log magnitude is judged 'silent', a class that matches
# no prompt: a logistic regression extrapolates far outside its training clips, and hears drums in
# digital silence (log floor -11.5). Real demo v2 clips lie at -4.6 or above; noise at -60 dBFS at -7.0.
SILENT_LOG_MEL = -9.0
SILENT = "silent"
# judge -> the captions.csv columns its label is read from, and its name in the printed table
ATTRIBUTES = {"drums": (("drums",), "drums present/absent"),
              "melody_instrument": (("melody_instrument",), "melody instrument"),
              "melody_family": (("gm_programs",), "melody instrument family"),
              "instruments": (("instruments",), "ensemble (the set of instruments)")}
MULTILABEL = {"instruments"}  # judged as a set of classes (classifier.LabelClassifier multilabel)


def melody_program(row: dict) -> int:
    """The General MIDI program of the part whose role is 'melody' (else the first part)."""
    programs = str(row["gm_programs"]).split("|")
    roles = str(row.get("roles") or "").split("|")
    return int(programs[roles.index("melody")] if "melody" in roles else programs[0])


def attribute_label(name: str, row: dict) -> str | None:
    """A captions.csv row's value of attribute `name`, or None where the row does not say."""
    columns, _ = ATTRIBUTES[name]
    if any(not row.get(c) for c in columns):
        return None
    if name == "melody_family":
        return GM_FAMILIES[melody_program(row) // 8]
    if name == "instruments":
        return "|".join(sorted(set(str(row[columns[0]]).split("|"))))
    return str(row[columns[0]]).strip()


def _reader(part: str):
    if part == "musicnn":
        from ssmusic.metrics.clips import NetworkReader

        return NetworkReader()
    if part == "mel-stats":
        from ssmusic.metrics.embeddings import MelStats

        return MelStats()
    raise SsmusicError(f"attribute features {part!r}: expected one of {list(FEATURE_PARTS)}")


def part_features(part: str, paths: list, cache_root: Path, progress: bool = True, label: str = "clips") -> np.ndarray:
    """[clips, dim] clip features of one kind: the reader's cached per-window readings, averaged."""
    from tqdm import tqdm

    from ssmusic.metrics.clips import EmbeddingCache

    cache = EmbeddingCache(_reader(part), cache_root)
    return np.stack([cache(Path(p)).mean(0) for p in tqdm(paths, desc=f"{label} ({part})", disable=not progress)])


def combine(kind: str, parts: dict[str, np.ndarray]) -> np.ndarray:
    """Features of `kind` ('a+b' concatenates) from the per-part arrays."""
    return np.concatenate([parts[p] for p in kind.split("+")], axis=1)


def load_judges(directory: str | Path | None = None) -> dict:
    """{attribute: LabelClassifier} for every attribute fitted in `directory` (default: the shipped)."""
    from ssmusic.metrics.classifier import LabelClassifier

    directory = Path(directory or DEFAULT_ATTRIBUTE_DIR)
    judges = {name: LabelClassifier.load(directory / name) for name in ATTRIBUTES
              if (directory / name / "classifier.json").is_file()}
    if not judges:
        raise SsmusicError(f"{directory}: no attribute judge (fit one: python -m ssmusic.metrics.attribute_fit "
                           "DEMO_V2_DIR --out DIR)")
    return judges


def judge_attributes(gen_items: list[tuple[Path, str | None]], ref_rows: list[dict], cache_root: Path,
                     progress: bool = True, directory: str | Path | None = None,
                     extra_labels: dict[str, dict[str, str]] | None = None) -> dict:
    """{attribute: adherence result + ratio to its ceiling} for each shipped attribute judge whose
    column the reference has, or {'skipped': why}. `extra_labels`: prompt -> {attribute: value}
    (evaluate --labels) for prompts that are not reference captions."""
    present = [name for name in ATTRIBUTES if any(attribute_label(name, r) for r in ref_rows)]
    judges = {name: judge for name, judge in load_judges(directory).items() if name in present} if present else {}
    if not judges:
        columns = sorted({c for cols, _ in ATTRIBUTES.values() for c in cols})
        return {"skipped": f"the reference's captions.csv has none of the attribute columns {columns} "
                           "(demo data v2 has them)"}
    parts = {"mel-stats"} | {p for judge in judges.values() for p in judge.features.split("+")}
    gen = {p: part_features(p, [path for path, _ in gen_items], cache_root, progress, "generated") for p in parts}
    ref = {p: part_features(p, [r["path"] for r in ref_rows], cache_root, progress, "reference") for p in parts}
    prompts = [prompt for _, prompt in gen_items]
    return {name: (_judge_set if judge.multilabel else _judge_one)(
        name, judge, prompts, _predict(judge, gen), ref_rows, _predict(judge, ref), extra_labels or {})
        for name, judge in judges.items()}


def _predict(judge, parts: dict[str, np.ndarray]) -> np.ndarray:
    """[clips, classes + 1] probabilities, the last column SILENT: 1 for silent clips, 0 otherwise."""
    probabilities = judge.probabilities(combine(judge.features, parts))
    silent = parts["mel-stats"][:, :parts["mel-stats"].shape[1] // 2].max(1) < SILENT_LOG_MEL  # band means
    probabilities[silent] = 0.0  # multi-label: no instrument heard
    if judge.multilabel:
        return probabilities
    return np.concatenate([probabilities, silent[:, None].astype(probabilities.dtype)], axis=1)


def _labels(name: str, ref_rows: list[dict], extra_labels: dict) -> tuple[list[str | None], dict[str, str]]:
    """The reference clips' labels and prompt -> label (reference captions, then --labels rows)."""
    ref_labels = [attribute_label(name, r) for r in ref_rows]
    prompt_labels = {r["caption"]: y for r, y in zip(ref_rows, ref_labels) if r.get("caption") and y}
    for prompt, values in extra_labels.items():  # a --labels CSV names the attribute itself (sets as 'a|b')
        if values.get(name):
            prompt_labels[prompt] = "|".join(sorted(set(values[name].split("|")))) if name == "instruments" \
                else values[name]
    return ref_labels, prompt_labels


def _judge_one(name: str, judge, prompts: list[str | None], gen_p: np.ndarray, ref_rows: list[dict],
               ref_p: np.ndarray, extra_labels: dict) -> dict:
    from types import SimpleNamespace

    from ssmusic.metrics.adherence import adherence

    ref_labels, prompt_labels = _labels(name, ref_rows, extra_labels)
    unknown = {p for p, y in prompt_labels.items() if y not in judge.classes}  # a class the train split lacks
    with_silent = SimpleNamespace(label=judge.label, classes=[*judge.classes, SILENT])
    result = adherence(with_silent, prompts, gen_p, {p: y for p, y in prompt_labels.items() if p not in unknown},
                       [y if y in judge.classes else None for y in ref_labels], ref_p)
    labelled = [i for i, p in enumerate(prompts) if p in prompt_labels and p not in unknown]
    result.update({"features": judge.features, "label": ATTRIBUTES[name][1], "classes": len(judge.classes),
                   "chance": round(1 / len(judge.classes), 4), "silent_clips": int(gen_p[labelled, -1].sum()),
                   "prompts_with_unknown_class": sum(p in unknown for p in prompts)})
    if result.get("value") is not None and result.get("ceiling"):
        result["ratio"] = round(result["value"] / result["ceiling"], 4)
    if len(judge.classes) == 2 and labelled:  # drums: asked for vs asked without, a generator that never plays
        from ssmusic.metrics.statistics import share  # them scores 50% overall and 0% when asked

        classes = [*judge.classes, SILENT]
        said = [(prompt_labels[prompts[i]], classes[int(gen_p[i].argmax())]) for i in labelled]
        result["per_label"] = {y: share([p == y for want, p in said if want == y]) for y in judge.classes}
    return result


def _with_ceiling(hits: list[bool], ceiling_hits: list[bool]) -> dict:
    """A share with n and Wilson interval, beside the same share on the real clips and their ratio."""
    from ssmusic.metrics.statistics import share

    result, ceiling = share(hits), share(ceiling_hits)
    result.update({"ceiling": ceiling.get("value"), "ceiling_ci95": ceiling.get("ci95"), "ceiling_clips": ceiling["n"]})
    if result.get("value") is not None and result["ceiling"]:
        result["ratio"] = round(result["value"] / result["ceiling"], 4)
    return result


def _judge_set(name: str, judge, prompts: list[str | None], gen_p: np.ndarray, ref_rows: list[dict],
               ref_p: np.ndarray, extra_labels: dict) -> dict:
    """The multi-label judge: the set heard (probability above 0.5) against the set named."""
    ref_labels, prompt_labels = _labels(name, ref_rows, extra_labels)
    classes = set(judge.classes)
    named = {p: set(y.split("|")) for p, y in prompt_labels.items() if set(y.split("|")) <= classes}
    heard = [{c for c, v in zip(judge.classes, row) if v > 0.5} for row in gen_p]
    real_heard = [{c for c, v in zip(judge.classes, row) if v > 0.5} for row in ref_p]
    keep = [i for i, p in enumerate(prompts) if p in named]
    real = [(set(y.split("|")), h) for y, h in zip(ref_labels, real_heard) if y and set(y.split("|")) <= classes]
    base = {"attribute": name, "label": ATTRIBUTES[name][1], "features": judge.features, "classes": len(classes),
            "labelled": len(keep), "unlabelled": len(prompts) - len(keep)}
    if not keep:
        return {"skipped": f"no generated prompt has known {name} (prompts must be captions of the reference)", **base}
    result = {**base, **_with_ceiling([heard[i] == named[prompts[i]] for i in keep], [h == y for y, h in real])}
    result["all_named_heard"] = _with_ceiling([named[prompts[i]] <= heard[i] for i in keep], [y <= h for y, h in real])
    result["silent_clips"] = int(sum(not heard[i] for i in keep))
    return result


def table_rows(entry: dict) -> list[str]:
    """Markdown rows (| judge | generated | ceiling |) of evaluate's 'attributes' result."""
    if "skipped" in entry:
        return [f"| attributes | skipped | {entry['skipped']} |"]
    rows = []
    for result in entry.values():
        if "skipped" in result:
            rows.append(f"| {result['label']} | skipped | {result['skipped']} |")
            continue
        details = [result["features"]]
        if "chance" in result:
            top = result["most_predicted"]
            details = [f"chance {result['chance']:.0%}", f"most predicted {top['class']} ({top['share']:.0%})", *details]
            details[:0] = [f"asked {y}: {v['value']:.0%} n={v['n']}" for y, v in result.get("per_label", {}).items()
                           if "value" in v]
        rows.append(_row(result["label"], result, details))
        if "all_named_heard" in result:
            rows.append(_row("ensemble: every named instrument heard", result["all_named_heard"], []))
    return rows


def _row(label: str, result: dict, details: list[str]) -> str:
    def share(value, ci95, n):
        return "n/a" if value is None else "{:.0%} [{:.0%}, {:.0%}] n={}".format(value, *ci95, n)

    ceiling = share(result["ceiling"], result.get("ceiling_ci95"), result.get("ceiling_clips"))
    return (f"| {label} | {share(result['value'], result['ci95'], result['n'])} | ceiling (real clips) {ceiling}; "
            f"ratio {result.get('ratio', 'n/a')}{''.join('; ' + d for d in details)} |")
