from __future__ import annotations

import subprocess
import sys

import pytest

import mmrank
from mmrank import registry
from mmrank.errors import MissingDependencyError, UnknownNameError
from mmrank.registry import Entry


def test_names_by_kind():
    found = mmrank.names()
    assert {"retriever", "reranker", "encoder", "index"} <= set(found)
    assert "bm25" in found["retriever"] and "bi-encoder" in found["reranker"]


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownNameError, match="Did you mean 'bm25'"):
        mmrank.retriever("bm52")
    with pytest.raises(UnknownNameError, match="unknown kind"):
        registry.entry("nope", "x")


def test_aliases_and_normalisation():
    assert registry.entry("index", "TORCH").name == "exact"
    assert registry.entry("reranker", "bi_encoder").name == "bi-encoder"


def test_missing_dependency_names_the_extra():
    registry.register(Entry("retriever", "needs-missing", "mmrank_tests_absent_pkg.mod:X", extra="fancy"))
    try:
        with pytest.raises(MissingDependencyError, match=r"mmrank\[fancy\]"):
            mmrank.retriever("needs-missing")
    finally:
        registry._ENTRIES["retriever"].pop("needs-missing")


def test_import_is_light_and_offline():
    code = (
        "import sys, mmrank; mmrank.names(); "
        "print(sorted(m for m in ('torch', 'transformers', 'faiss') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("kind", ["retriever", "reranker", "encoder", "index"])
def test_every_target_resolves(kind):
    """Every registered target imports (catches typos in the catalog)."""
    for name in registry.names(kind)[kind]:
        e = registry.entry(kind, name)
        try:
            obj = registry.resolve(kind, name)
        except MissingDependencyError:
            continue  # optional extras are allowed to be absent
        assert callable(obj), e.target
