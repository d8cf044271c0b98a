"""Real recordings split by track: fixed, versions of a piece together, a clear error without them."""

import pytest

from ssmusic.data.real_music import debian_tracks, piece, split_of
from ssmusic.errors import SsmusicError


def fake_package(tmp_path, names):
    for name in names:
        (tmp_path / name).write_bytes(b"")
    return {"fake-music": (str(tmp_path), "*.ogg", "CC0")}


def test_split_is_by_piece_and_fixed(tmp_path):
    names = [f"t{i}.ogg" for i in range(40)] + ["t3_enhanced.ogg", "t5-old.ogg"]
    rows = debian_tracks(roots=fake_package(tmp_path, names))
    by_name = {row["path"].name: row["split"] for row in rows}
    assert by_name["t3_enhanced.ogg"] == by_name["t3.ogg"] and by_name["t5-old.ogg"] == by_name["t5.ogg"]
    assert {"train", "valid", "test"} == set(by_name.values())
    assert split_of("fake-music", "t7") == by_name["t7.ogg"]  # a hash of the name, not of the listing
    assert piece(tmp_path / "track3_enhanced.opus") == "track3"
    test = debian_tracks("test", roots=fake_package(tmp_path, names))
    assert test and all(row["split"] == "test" and row["license"] == "CC0" for row in test)


def test_missing_packages_and_bad_split_are_clear_errors(tmp_path):
    with pytest.raises(SsmusicError, match="apt-get install fake-music"):
        debian_tracks(roots={"fake-music": (str(tmp_path / "absent"), "*.ogg", "CC0")})
    with pytest.raises(SsmusicError, match="split"):
        debian_tracks("holdout")
