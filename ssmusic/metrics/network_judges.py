"""Judges that listen through the pretrained music network (see clips.NetworkReader):

- **Fréchet distance** between the network's patch embeddings of the generated clips and of the
  reference split, with a bootstrap interval over clips, printed beside its **real-vs-real floor at
  the same sizes**: the distance of n_generated *real* clips drawn from the dataset's other splits
  (matched one for one to the instrument of each generated clip's prompt where the reference has an
  instrument column) to the same reference, over several draws (mean and range).
- **Tag KL**: KL(reference ‖ generated) between the network's 50 tag probabilities (normalized to
  a distribution) of each generated clip and the reference clip with its caption; beside it the same
  KL of each reference clip to a matched real clip (floor) and to a random real clip (chance).
- **Tag adherence**: for prompts naming an instrument the network has a tag for, is that tag the
  top instrument tag (top m when m are named)? For "slow"/"fast", is the named tag more probable
  than its opposite? Ceiling: the same rule on the reference clips with their own captions.
"""

from __future__ import annotations

import numpy as np

from ssmusic.metrics.prompts import INSTRUMENT_WORDS, OPPOSITE, prompted_tags
from ssmusic.metrics.frechet import frechet_of_clips, frechet_with_interval
from ssmusic.metrics.statistics import describe, over_seeds, share

FLOOR_DRAWS = 10


# what a real clip is matched on for a floor: demo v1's one instrument, else demo v2's melody instrument
MATCH_COLUMNS = ("instrument", "melody_instrument")


def matched_draw(gen_rows: list[dict | None], pool_rows: list[dict], rng: np.random.Generator,
                 columns: tuple[str, ...] = MATCH_COLUMNS) -> list[int]:
    """Indices of pool clips, one per generated clip, of the same value as its paired reference row
    in the first of `columns` the row has (else any clip), without repeats within a draw."""
    free = list(rng.permutation(len(pool_rows)))
    chosen = []
    for row in gen_rows:
        column = next((c for c in columns if (row or {}).get(c)), None)
        want = (row or {}).get(column) if column else None
        pick = next((i for i in free if want and pool_rows[i].get(column) == want), free[0] if free else None)
        if pick is None:
            break
        free.remove(pick)
        chosen.append(pick)
    return chosen


def frechet(gen: list[np.ndarray], ref: list[np.ndarray], pool: list[np.ndarray], gen_rows: list[dict | None],
            pool_rows: list[dict], name: str, seed: int = 0) -> dict:
    """FD(generated, reference) with its interval, and the real-vs-real floor at the same sizes."""
    result = {**frechet_with_interval(gen, ref), "patches": [sum(map(len, gen)), sum(map(len, ref))],
              "embedding": name}
    value = result["value"]
    rng = np.random.default_rng(seed)
    draws = [matched_draw(gen_rows, pool_rows, rng) for _ in range(FLOOR_DRAWS)]
    draws = [d for d in draws if len(d) == len(gen)]
    if not draws:
        result["floor"] = {"skipped": f"the dataset's other splits hold fewer than {len(gen)} clips"}
        return result
    floors = [frechet_of_clips([pool[i] for i in d], ref) for d in draws]
    floor = over_seeds(floors)
    result["floor"] = {"mean": floor["mean"], "min": floor["min"], "max": floor["max"], "draws": len(floors),
                       "n_real": len(gen), "source": "real clips of the dataset's other splits, matched to the "
                       "instrument (demo v2: melody instrument) of each generated clip's prompt where known"}
    result["ratio_to_floor"] = round(value / floor["mean"], 3) if floor["mean"] > 0 else None
    return result


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    from ssmusic.metrics.kl import kl_divergence

    return float(kl_divergence(p[None], q[None])[0])


def tag_kl(gen_tags: list[np.ndarray], ref_tags_by_caption: dict[str, np.ndarray], prompts: list[str | None],
           ref_rows_by_caption: dict[str, dict], pool_tags: list[np.ndarray], pool_rows: list[dict],
           seed: int = 0) -> dict:
    """KL(reference ‖ generated) over clips whose prompt is a reference caption, with floor and chance."""
    pairs = [(i, p) for i, p in enumerate(prompts) if p in ref_tags_by_caption]
    if not pairs:
        return {"skipped": "no generated prompt matches a reference caption, so no pair to compare "
                           "(generate from the reference captions, e.g. a demo split's captions.csv)"}
    values = [_kl(ref_tags_by_caption[p], gen_tags[i]) for i, p in pairs]
    per_clip: list[float | None] = [None] * len(prompts)
    for (i, _), v in zip(pairs, values):
        per_clip[i] = round(v, 4)
    result = {**describe(values), "pairs": len(pairs), "per_clip": per_clip,
              "distribution": "50 tag probabilities normalized to sum 1"}
    rng = np.random.default_rng(seed)
    captions = [p for _, p in pairs]
    if pool_tags:
        matched = matched_draw([ref_rows_by_caption[c] for c in captions], pool_rows, rng)
        result["floor"] = describe([_kl(ref_tags_by_caption[c], pool_tags[j]) for c, j in zip(captions, matched)])
        result["floor"]["source"] = "each reference clip against a real clip of another split with its instrument (demo v2: melody instrument)"
        chance = rng.integers(0, len(pool_tags), len(captions))
        result["chance"] = describe([_kl(ref_tags_by_caption[c], pool_tags[j]) for c, j in zip(captions, chance)])
        result["chance"]["source"] = "each reference clip against a random real clip of another split"
    return result


def tag_judgements(tags: np.ndarray, prompt: str | None, tag_names: list[str]) -> list[tuple[str, bool]]:
    """(tag, right?) for each tag the prompt names (see the module doc)."""
    named = prompted_tags(prompt or "")
    index = {t: i for i, t in enumerate(tag_names)}
    out = []
    instruments = [t for t in named["instruments"] if t in index]
    if instruments:
        vocabulary = [t for t in INSTRUMENT_WORDS if t in index]
        ranked = sorted(vocabulary, key=lambda t: -tags[index[t]])[: len(instruments)]
        out += [(t, t in ranked) for t in instruments]
    for t in named["tempo"]:
        if t in index and OPPOSITE[t] in index:
            out.append((t, bool(tags[index[t]] > tags[index[OPPOSITE[t]]])))
    return out


def tag_adherence(gen_tags: list[np.ndarray], prompts: list[str | None], ref_tags: list[np.ndarray],
                  ref_captions: list[str | None], tag_names: list[str]) -> dict:
    """Share of named tags the network hears, per tag and overall, beside the real clips' ceiling."""
    def judge(all_tags, texts):
        judged = [j for tags, text in zip(all_tags, texts) for j in tag_judgements(tags, text, tag_names)]
        per_tag = {t: share([ok for tag, ok in judged if tag == t]) for t in sorted({tag for tag, _ in judged})}
        return share([ok for _, ok in judged]), per_tag

    overall, per_tag = judge(gen_tags, prompts)
    if overall["n"] == 0:
        return {"skipped": "no prompt names an instrument or tempo word the music network has a tag for "
                           f"({', '.join(list(INSTRUMENT_WORDS) + list(OPPOSITE))})"}
    ceiling, ceiling_per_tag = judge(ref_tags, ref_captions)
    return {**overall, "per_tag": per_tag, "ceiling": ceiling, "ceiling_per_tag": ceiling_per_tag,
            "rule": "instrument: the named tag is the top (top m of m named) of the network's instrument tags; "
                    "slow/fast: more probable than its opposite"}
