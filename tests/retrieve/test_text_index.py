"""The text-corpus index family: saved atomically, opened by ``open_index``, same results as the retriever."""

from __future__ import annotations

import pytest

from mmrank.collection import open_index
from mmrank.errors import DataFormatError, IndexCorruptError, OptionError
from mmrank.retrieve.bm25 import BM25Retriever
from mmrank.retrieve.text_index import MARKER, TextSearch, index_corpus
from mmrank.types import Corpus, Item, Query

CORPUS = Corpus(
    [
        Item("a", text="The cat sat on the mat.", title="Cats"),
        Item("b", text="Paris is the capital of France."),
        Item("c", text="Dogs bark at the cat at night."),
    ]
)


def test_bm25_index_equals_the_retriever_and_opens_by_marker(tmp_path):
    index_corpus(CORPUS, tmp_path / "idx", retriever="bm25")
    assert (tmp_path / "idx" / MARKER).is_file()
    c = open_index(tmp_path / "idx")
    assert isinstance(c, TextSearch) and c.kind == "text"
    ref = BM25Retriever().index(CORPUS).retrieve([Query("q", text="cat")], k=3)["q"]
    got = c.search("cat", 3)
    assert got.ids == ref.ids and got.scores == pytest.approx(ref.scores)
    assert c.item("a").title == "Cats"
    with pytest.raises(DataFormatError, match="no item"):
        c.item("zz")
    same_ids = c.search_batch([Query("query", text="cat"), Query("query", text="capital")], 2)
    assert [r.ids[0] for r in same_ids] == [ref.ids[0], "b"]


def test_tampered_items_and_bad_options_are_refused(tmp_path):
    index_corpus(CORPUS, tmp_path / "idx", retriever="bm25")
    items = next((tmp_path / "idx").glob("items-*.jsonl"))
    items.write_text(items.read_text().replace("Paris", "Rome!"))
    with pytest.raises(IndexCorruptError, match="checksum"):
        open_index(tmp_path / "idx")
    with pytest.raises(OptionError):
        index_corpus(CORPUS, tmp_path / "x", retriever="splade")
    with pytest.raises(OptionError, match="dense"):
        index_corpus(CORPUS, tmp_path / "x", retriever="bm25", engine="ray")
