"""The music network's judges on known inputs: a matching set sits at its floor, a shifted one does not;
tag adherence hits the named tag and misses another."""

import numpy as np

from ssmusic.metrics.network_judges import frechet, matched_draw, tag_adherence, tag_judgements, tag_kl

TAGS = ["guitar", "classical", "slow", "strings", "drums", "fast", "piano", "violin", "flute", "choir"]


def _tags(**high):
    out = np.full(len(TAGS), 0.05)
    for name, value in high.items():
        out[TAGS.index(name)] = value
    return out


def test_matched_draw_keeps_instruments_and_never_repeats():
    pool = [{"instrument": "piano"}] * 3 + [{"instrument": "flute"}] * 3
    draw = matched_draw([{"instrument": "flute"}, {"instrument": "piano"}, None], pool, np.random.default_rng(0))
    assert pool[draw[0]]["instrument"] == "flute" and pool[draw[1]]["instrument"] == "piano"
    assert len(set(draw)) == 3


def _clips(rng, n, shift=0.0):
    return [rng.normal(shift, 1.0, size=(4, 6)) for _ in range(n)]


def test_frechet_sits_at_its_floor_for_real_like_clips_and_not_for_shifted_ones():
    rng = np.random.default_rng(0)
    ref, pool = _clips(rng, 20), _clips(rng, 60)
    rows = [{"instrument": "x"}] * 60
    same = frechet(_clips(rng, 20), ref, pool, [None] * 20, rows, "test")
    shifted = frechet(_clips(rng, 20, shift=1.5), ref, pool, [None] * 20, rows, "test")
    assert same["floor"]["draws"] == 10 and same["n_generated"] == 20
    assert same["ratio_to_floor"] < 1.6
    assert shifted["ratio_to_floor"] > 5 and shifted["ci95"][0] > same["floor"]["max"]  # must fail
    assert "skipped" in frechet(_clips(rng, 20), ref, pool[:5], [None] * 20, rows[:5], "test")["floor"]


def test_tag_judgements_hit_the_named_tag_and_miss_another():
    piano = _tags(piano=0.9, violin=0.3, slow=0.6, fast=0.1)
    assert tag_judgements(piano, "a slow piano piece", TAGS) == [("piano", True), ("slow", True)]
    assert tag_judgements(piano, "a fast fiddle tune", TAGS) == [("violin", False), ("fast", False)]
    assert tag_judgements(piano, "a church organ", TAGS) == []


def test_tag_adherence_reports_its_ceiling_and_skips_without_named_tags():
    gen = [_tags(piano=0.9), _tags(piano=0.9)]
    result = tag_adherence(gen, ["solo piano", "on the violin"], [_tags(piano=0.9), _tags(violin=0.8)],
                           ["solo piano", "on the violin"], TAGS)
    assert result["value"] == 0.5 and result["n"] == 2 and result["ceiling"]["value"] == 1.0
    assert result["per_tag"]["violin"]["value"] == 0.0
    assert "skipped" in tag_adherence(gen, ["an organ", None], gen, ["an organ", None], TAGS)


def test_tag_kl_is_zero_for_identical_tags_and_larger_for_others():
    ref = {"a": _tags(piano=0.9), "b": _tags(flute=0.9)}
    rows = {"a": {"instrument": "piano"}, "b": {"instrument": "flute"}}
    pool = [_tags(piano=0.8), _tags(flute=0.8), _tags(choir=0.9)]
    pool_rows = [{"instrument": "piano"}, {"instrument": "flute"}, {"instrument": "choir"}]
    same = tag_kl([_tags(piano=0.9), _tags(flute=0.9)], ref, ["a", "b"], rows, pool, pool_rows)
    wrong = tag_kl([_tags(flute=0.9), _tags(piano=0.9)], ref, ["a", "b"], rows, pool, pool_rows)
    assert same["value"] < 1e-6 and wrong["value"] > 0.5 and same["floor"]["value"] < wrong["value"]
    assert same["per_clip"] == [0.0, 0.0]
    assert "skipped" in tag_kl([_tags()], ref, ["other"], rows, pool, pool_rows)


def test_matched_draw_uses_the_melody_instrument_where_there_is_no_instrument_column():
    """Demo v2 captions name an ensemble: the floor's real clips share the melody instrument."""
    pool = [{"melody_instrument": "flute"}, {"melody_instrument": "violin"}] * 5
    for seed in range(5):
        draw = matched_draw([{"melody_instrument": "violin"}] * 3, pool, np.random.default_rng(seed))
        assert [pool[i]["melody_instrument"] for i in draw] == ["violin"] * 3
