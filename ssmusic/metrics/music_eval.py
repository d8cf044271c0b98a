"""The judges that hear music, run over a generated set and its reference (see `ssmusic evaluate`):
music-network Fréchet distance (with its real-vs-real floor), tag KL, tag adherence (network_judges),
motion, tempo and key (music_judges). Each judge that cannot run is reported as skipped with its
reason; the others still run. Per-clip readings are returned so paired tests can be redone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssmusic.errors import SsmusicError

NETWORK_METRICS = ("music_fd", "tag_kl", "tag_adherence")
MUSIC_METRICS = ("motion", "tempo", "key")


def _read(reader, paths: list[Path], cache_root: Path, label: str, progress: bool) -> list[np.ndarray]:
    from tqdm import tqdm

    from ssmusic.metrics.clips import EmbeddingCache

    cache = EmbeddingCache(reader, cache_root)
    return [cache(Path(p)) for p in tqdm(paths, desc=f"{label} ({reader.name.split(':')[0]})", disable=not progress)]


class _Lazy:
    """A list whose items are read when first used: the real-vs-real floors draw a few hundred clips
    of the other splits, not all of them."""

    def __init__(self, read, length: int) -> None:
        self.read, self.length, self.items = read, length, {}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if index not in self.items:
            self.items[index] = self.read(index)
        return self.items[index]


def _network(metrics, gen_paths, gen_prompts, gen_rows, ref_rows, pool_rows, cache_root, progress) -> tuple[dict, dict]:
    from ssmusic.metrics.clips import NetworkReader
    from ssmusic.metrics.network_judges import frechet, tag_adherence, tag_kl

    try:
        reader = NetworkReader()
    except SsmusicError as error:
        return {m: {"skipped": str(error)} for m in metrics}, {}
    from ssmusic.metrics.clips import EmbeddingCache

    cache = EmbeddingCache(reader, cache_root)
    gen = [reader.split(v) for v in _read(reader, gen_paths, cache_root, "generated", progress)]
    ref = [reader.split(v) for v in _read(reader, [r["path"] for r in ref_rows], cache_root, "reference", progress)]
    pool = _Lazy(lambda i: reader.split(cache(Path(pool_rows[i]["path"]))), len(pool_rows))
    out: dict = {}
    if "music_fd" in metrics:
        out["music_fd"] = frechet([e for e, _ in gen], [e for e, _ in ref], _Lazy(lambda i: pool[i][0], len(pool)),
                                  gen_rows, pool_rows, reader.name)
    ref_by_caption = {r["caption"]: t for r, (_, t) in zip(ref_rows, ref) if r.get("caption")}
    rows_by_caption = {r["caption"]: r for r in ref_rows if r.get("caption")}
    if "tag_kl" in metrics:
        out["tag_kl"] = tag_kl([t for _, t in gen], ref_by_caption, gen_prompts, rows_by_caption,
                               _Lazy(lambda i: pool[i][1], len(pool)), pool_rows)
    if "tag_adherence" in metrics:
        out["tag_adherence"] = tag_adherence([t for _, t in gen], gen_prompts, [t for _, t in ref],
                                             [r.get("caption") for r in ref_rows], reader.tag_names)
    per_clip = {"tags": [dict(zip(reader.tag_names, np.round(t, 4).tolist())) for _, t in gen],
                "reference_tags": [dict(zip(reader.tag_names, np.round(t, 4).tolist())) for _, t in ref]}
    return out, per_clip


def _music(metrics, gen_paths, gen_prompts, gen_rows, ref_rows, cache_root, progress,
           estimators: dict) -> tuple[dict, dict]:
    from ssmusic.metrics import music_judges
    from ssmusic.metrics.clips import MODE_PROFILE, MusicReader
    from ssmusic.metrics.prompts import prompted_bpm, prompted_key

    try:
        reader = MusicReader(**estimators)
    except (SsmusicError, ImportError) as error:
        return {m: {"skipped": str(error)} for m in metrics}, {}
    gen = [MusicReader.fields(v) for v in _read(reader, gen_paths, cache_root, "generated", progress)]
    ref = [MusicReader.fields(v) for v in _read(reader, [r["path"] for r in ref_rows], cache_root, "reference",
                                                 progress)]
    by_caption = {r["caption"]: c for r, c in zip(ref_rows, ref) if r.get("caption")}
    gen_bpms = [prompted_bpm(p, row) for p, row in zip(gen_prompts, gen_rows)]
    ref_bpms = [prompted_bpm(r.get("caption"), r) for r in ref_rows]
    gen_keys = [prompted_key(p, row) for p, row in zip(gen_prompts, gen_rows)]
    ref_keys = [prompted_key(r.get("caption"), r) for r in ref_rows]
    out: dict = {}
    if "motion" in metrics:
        out["motion"] = music_judges.motion(gen, ref, [by_caption.get(p) for p in gen_prompts])
        out["motion"]["codec"] = f"{reader.codec.name}, first {reader.codebooks} codebook(s)"
    if "tempo" in metrics:
        out["tempo"] = music_judges.tempo(gen, gen_bpms, ref, ref_bpms, reader.tempo_estimator)
    if "key" in metrics:
        out["key"] = music_judges.key(gen, gen_keys, ref, ref_keys, reader.key_estimator, MODE_PROFILE)
    per_clip = {"music": [_public(c, b, k) for c, b, k in zip(gen, gen_bpms, gen_keys)],
                "reference_music": [_public(c, b, k) for c, b, k in zip(ref, ref_bpms, ref_keys)]}
    return out, per_clip


def _public(reading: dict, bpm: float | None, key: tuple[int, str] | None) -> dict:
    from ssmusic.metrics.key import key_name, mode_given_tonic

    out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in reading.items() if k != "chroma"}
    out["key_estimate"] = key_name(reading["key_tonic"], reading["key_mode"])
    del out["key_tonic"], out["key_mode"]
    out["prompted_bpm"] = bpm
    out["prompted_key"] = key_name(*key) if key else None
    if key:
        from ssmusic.metrics.clips import MODE_PROFILE

        out["mode_given_tonic"] = mode_given_tonic(None, 0, key[0], MODE_PROFILE, chroma=reading["chroma"])
    return out


def judge_music(gen_items: list[tuple[Path, str | None]], ref_rows: list[dict], pool_rows: list[dict],
                metrics: list[str], cache_root: Path, progress: bool = True,
                estimators: dict | None = None) -> tuple[dict, dict]:
    """-> ({metric: result}, {"generated": per clip, its prompt and every judge's reading,
    "reference": the same for the reference clips}). `estimators`: tempo_estimator, key_estimator
    for clips.MusicReader (default: its defaults)."""
    gen_paths = [p for p, _ in gen_items]
    prompts = [t for _, t in gen_items]
    rows_by_caption = {r["caption"]: r for r in ref_rows if r.get("caption")}
    gen_rows = [rows_by_caption.get(p) for p in prompts]
    results: dict = {}
    extra: dict = {}
    network = [m for m in metrics if m in NETWORK_METRICS]
    if network:
        found, more = _network(network, gen_paths, prompts, gen_rows, ref_rows, pool_rows, cache_root, progress)
        results.update(found)
        extra.update(more)
    music = [m for m in metrics if m in MUSIC_METRICS]
    if music:
        found, more = _music(music, gen_paths, prompts, gen_rows, ref_rows, cache_root, progress, estimators or {})
        results.update(found)
        extra.update(more)
    kl = results.get("tag_kl", {}).get("per_clip")
    clips = []
    for i, (path, prompt) in enumerate(gen_items):
        clip = {"path": str(path), "prompt": prompt, "reference": str(gen_rows[i]["path"]) if gen_rows[i] else None}
        clip.update({key: extra[key][i] for key in ("music", "tags") if key in extra})
        if kl is not None:
            clip["tag_kl"] = kl[i]
        clips.append(clip)
    reference = [{"path": str(r["path"]), "caption": r.get("caption"),
                  **{k: extra[f"reference_{k}"][i] for k in ("music", "tags") if f"reference_{k}" in extra}}
                 for i, r in enumerate(ref_rows)]
    return results, {"generated": clips, "reference": reference}


def _share(entry: dict) -> str:
    if "skipped" in entry or entry.get("value") is None:
        return f"skipped ({entry.get('skipped', 'no value')})"
    low, high = entry["ci95"]
    return f"{entry['value']:.0%} [{low:.0%}, {high:.0%}] n={entry['n']}"


def _stat(entry: dict, unit: str = "") -> str:
    if "skipped" in entry or entry.get("value") is None:
        return f"skipped ({entry.get('skipped', 'no value')})"
    low, high = entry["ci95"]
    return f"{entry['value']:.3g}{unit} [{low:.3g}, {high:.3g}] n={entry['n']}"


def table_rows(results: dict) -> list[str]:
    """Markdown rows (| judge | generated | real / floor / ceiling |) for the judges in `results`."""
    rows = []
    for name in NETWORK_METRICS + MUSIC_METRICS:
        entry = results.get(name)
        if entry is None:
            continue
        if "skipped" in entry:
            rows.append(f"| {name} | skipped | {entry['skipped']} |")
        elif name == "music_fd":
            floor = entry["floor"]
            floor_text = (f"skipped ({floor['skipped']})" if "skipped" in floor else
                          f"floor (real vs real, n={floor['n_real']}, {floor['draws']} draws) {floor['mean']:.3g} "
                          f"(range {floor['min']:.3g}-{floor['max']:.3g}); ratio {entry.get('ratio_to_floor')}x")
            interval = " [{:.3g}, {:.3g}]".format(*entry["ci95"]) if "ci95" in entry else ""
            rows.append(f"| music-network Fréchet distance | {entry['value']:.3g}{interval} "
                        f"n={entry['n_generated']} vs {entry['n_reference']} | {floor_text} |")
        elif name == "tag_kl":
            extra = "; ".join(f"{k} {_stat(entry[k])}" for k in ("floor", "chance") if k in entry)
            rows.append(f"| tag KL (ref ‖ gen) | {_stat(entry)} | {extra} |")
        elif name == "tag_adherence":
            tags = ", ".join(f"{t} {v['value']:.0%}/{entry['ceiling_per_tag'].get(t, {}).get('value', float('nan')):.0%}"
                             for t, v in entry["per_tag"].items())
            rows.append(f"| tag adherence | {_share(entry)} | ceiling {_share(entry['ceiling'])}; per tag gen/real: "
                        f"{tags} |")
        elif name == "motion":
            for field, v in entry.items():
                if isinstance(v, dict) and "generated" in v:
                    rows.append(f"| {field} (median) | {_stat(v['generated'])} | real {_stat(v['real'])}; "
                                f"ratio {v.get('ratio')} |")
        elif name == "tempo":
            ceiling = entry["ceiling"]
            by = entry.get("estimator")
            for key, label in (("hit", f"tempo within 8% ({by})"), ("octave_error", f"tempo octave error ({by})"),
                               ("order_by_tempo", f"slow < fast ({by})"), ("order_by_onset_rate", "slow < fast (onsets)")):
                real = _share(ceiling[key]) if key in ceiling else ceiling.get("skipped")
                rows.append(f"| {label} | {_share(entry[key])} | real {real} |")
        elif name == "key":
            ceiling = entry["ceiling"]
            for key, label in (("mode_given_tonic", f"mode (tonic given, {entry.get('mode_profile')} profiles)"),
                               ("key_exact", f"key (tonic and mode, {entry.get('estimator')})")):
                real = _share(ceiling[key]) if key in ceiling else ceiling.get("skipped")
                rows.append(f"| {label} | {_share(entry[key])} | real {real} |")
    return rows
