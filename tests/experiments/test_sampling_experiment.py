"""The sampling rule: the lowest mean rank over the criteria, motion measured as closeness to real."""

from ssmusic.experiments.sampling import CRITERIA, SENSITIVITY, rank


def _table(adherence, fd, frozen_ratio, onset_ratio):
    figures = {"adherence.value": adherence, "tag_adherence.value": adherence, "music_fd.value": fd,
               "motion.frozen_run_s.ratio": frozen_ratio, "motion.onset_rate.ratio": onset_ratio,
               "motion.longest_onset_gap_s.ratio": frozen_ratio, "tempo.hit.value": 0.3,
               "key.mode_given_tonic.value": 0.5, "tag_kl.value": 1.0,
               "attributes.melody_instrument.value": adherence, "attributes.drums.value": adherence}
    return {path: {"mean": value} for path, value in figures.items()}


def test_rank_prefers_the_setting_better_by_more_judges():
    settings = {"good": _table(0.8, 40.0, 1.1, 1.0), "frozen": _table(0.8, 40.0, 3.0, 1.0),
                "jitter": _table(0.5, 80.0, 0.9, 3.0)}
    result = rank(settings)
    assert result["chosen"] == "good"
    assert result["ranks"]["frozen"]["frozen run vs real"] == 3.0       # 3x real is farther than 0.9x
    assert result["ranks"]["good"]["tempo within 8%"] == 2.0            # a three-way tie shares the mean rank
    assert set(result["ranks"]["good"]) == set(CRITERIA)
    assert set(rank(settings, SENSITIVITY)["ranks"]["good"]) == set(SENSITIVITY)


def test_a_criterion_no_setting_was_judged_on_is_left_out():
    """Demo v1 has no attribute judges: the pick is made on the criteria that were measured."""
    v1 = {name: {p: v for p, v in _table(*figures).items() if not p.startswith("attributes.")}
          for name, figures in {"good": (0.8, 40.0, 1.1, 1.0), "frozen": (0.8, 40.0, 3.0, 1.0)}.items()}
    result = rank(v1)
    assert result["chosen"] == "good"
    assert set(result["ranks"]["good"]) == set(CRITERIA) - {"melody instrument (attribute judge)",
                                                           "drums present or absent (attribute judge)"}
