"""The judges' default estimators never depend on what is installed; essentia's run only when asked
for by name, and asking for them without essentia is a one-line error."""

from types import SimpleNamespace

import pytest

from ssmusic.errors import SsmusicError
from ssmusic.metrics.clips import KEY_ESTIMATOR, TEMPO_ESTIMATOR, MusicReader, check_estimators

CODEC = SimpleNamespace(name="stand-in", sample_rate=22050)   # MusicReader's name and rate, no codec load


def test_the_default_estimators_are_the_same_with_and_without_essentia(essentia):
    essentia.install()
    with_essentia = MusicReader(CODEC)
    essentia.remove()
    without = MusicReader(CODEC)
    assert (with_essentia.tempo_estimator, with_essentia.key_estimator) == ("librosa", "librosa-temperley")
    assert (TEMPO_ESTIMATOR, KEY_ESTIMATOR) == ("librosa", "librosa-temperley")
    assert with_essentia.name == without.name == "music:stand-in:k1:librosa:librosa-temperley:v1"


def test_essentia_when_asked_for_by_name(essentia):
    essentia.install()
    reader = MusicReader(CODEC, tempo_estimator="essentia", key_estimator="essentia-bgate")
    assert reader.tempo_estimator == "essentia" and ":essentia:essentia-bgate:" in reader.name


def test_essentia_asked_for_without_it_is_a_clear_error(essentia):
    essentia.remove()
    with pytest.raises(SsmusicError, match=r"--tempo-estimator essentia: essentia is not installed .*judges"):
        MusicReader(CODEC, tempo_estimator="essentia")
    with pytest.raises(SsmusicError, match=r"--key-estimator essentia-bgate: essentia is not installed"):
        check_estimators(key_estimator="essentia-bgate")
    with pytest.raises(SsmusicError, match=r"--tempo-estimator 'aubio': expected one of \['librosa'"):
        check_estimators(tempo_estimator="aubio")
    check_estimators()   # the defaults need nothing optional
