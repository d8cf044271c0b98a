"""Caption words map to the music network's tags only where they name the same thing."""

from ssmusic.metrics.prompts import prompted_bpm, prompted_key, prompted_tags


def test_instrument_words_map_to_tags_honestly():
    assert prompted_tags("A lively jig on the fiddle")["instruments"] == ["violin"]
    assert prompted_tags("played by a string ensemble")["instruments"] == ["strings"]
    assert prompted_tags("A harpsichord plays")["instruments"] == ["harpsichord"]   # not "harp"
    assert prompted_tags("a nylon-string guitar")["instruments"] == ["guitar"]      # not "strings"
    assert prompted_tags("Steel drums play a calypso")["instruments"] == []         # not a drum kit
    assert prompted_tags("A church organ plays a hymn")["instruments"] == []       # no organ tag
    assert prompted_tags("piano and drums")["instruments"] == ["piano", "drums"]


def test_tempo_words_only_when_named_and_unambiguous():
    assert prompted_tags("A slow air")["tempo"] == ["slow"]
    assert prompted_tags("a fast reel")["tempo"] == ["fast"]
    assert prompted_tags("A lively jig")["tempo"] == []               # lively is not "fast"
    assert prompted_tags("slow then fast")["tempo"] == []


def test_bpm_and_key_from_words_or_the_reference_row():
    assert prompted_bpm("A slow air at about 62 BPM.") == 62.0
    assert prompted_bpm("150-160 bpm, fast") == 150.0
    assert prompted_bpm("no tempo here") is None
    assert prompted_bpm("at 62 BPM", {"tempo_bpm": "70"}) == 70.0
    assert prompted_key("in E minor") == (4, "minor")
    assert prompted_key("anything", {"key": "Bb major"}) == (10, "major")
