"""`open_index` dispatches on the marker file an index family writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrank import registry
from mmrank.collection import open_index
from mmrank.errors import DataFormatError


def test_every_collection_entry_is_a_marker_file_name() -> None:
    for e in registry.entries("collection"):
        assert e.name.endswith(".json"), e


def test_not_an_index_names_the_markers(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"mmrank_vision\.json"):
        open_index(tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no such index folder"):
        open_index(tmp_path / "nope")


def test_two_markers_are_refused(tmp_path: Path) -> None:
    registry.register(registry.Entry("collection", "other_family.json", "mmrank.vision.search:ImageSearch"))
    try:
        (tmp_path / "mmrank_vision.json").write_text("{}")
        (tmp_path / "other_family.json").write_text("{}")
        with pytest.raises(DataFormatError, match="several index families"):
            open_index(tmp_path)
    finally:
        registry._ENTRIES["collection"].pop("other-family.json")
