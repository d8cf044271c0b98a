"""A C-major scale reads major and a C-minor one minor; key names parse from prompts."""

import pytest

from ssmusic.metrics.key import estimate_key, key_name, mode_given_tonic, parse_key


@pytest.mark.parametrize("profile", ["krumhansl", "temperley"])
def test_the_mode_of_a_scale_given_its_tonic(synth, profile):
    assert mode_given_tonic(synth.scale(60, synth.major), synth.rate, 0, profile) == "major"
    assert mode_given_tonic(synth.scale(60, synth.minor), synth.rate, 0, profile) == "minor"


def test_the_key_of_a_scale(synth):
    major = estimate_key(synth.scale(60, synth.major), synth.rate)
    minor = estimate_key(synth.scale(60, synth.minor), synth.rate)
    assert key_name(major["tonic"], major["mode"]) == "C major"
    assert key_name(minor["tonic"], minor["mode"]) == "C minor"
    # the case that must fail: a D-minor scale is not C minor
    d_minor = estimate_key(synth.scale(62, synth.minor), synth.rate)
    assert key_name(d_minor["tonic"], d_minor["mode"]) == "D minor"


def test_parse_key_reads_spellings():
    assert parse_key("A lively jig in D major at 112 BPM.") == (2, "major")
    assert parse_key("key of Bb minor") == (10, "minor")
    assert parse_key("in F sharp minor") == (6, "minor")
    assert parse_key("C# minor, slow") == (1, "minor")
    assert parse_key("a calm piano piece") is None
