"""The package's layering and naming rules (issue 12, item 14): checked on the code itself."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RERANK = ROOT / "mmrank" / "rerank"


def _imports_after(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(m for m in sys.modules if m.startswith('mmrank'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_batching_lives_below_rerankers_and_encoders():
    import mmrank.rerank.base as base
    from mmrank.llm.batching import length_sorted_batches

    assert not hasattr(base, "length_sorted_batches")
    assert length_sorted_batches([3, 10, 1, 7], 2) == [[1, 3], [0, 2]]
    with pytest.raises(ValueError):
        length_sorted_batches([1], 0)
    assert not any(m.startswith("mmrank.rerank") for m in _imports_after("mmrank.llm.batching"))
    text_encoder = (ROOT / "mmrank" / "encoders" / "text.py").read_text()
    assert "mmrank.rerank" not in text_encoder


def test_catalog_does_not_import_the_registry():
    assert "mmrank.registry" not in _imports_after("mmrank.catalog")
    tree = ast.parse((ROOT / "mmrank" / "catalog.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m and m.startswith("mmrank") for m in imported)
    from mmrank.catalog import Entry
    from mmrank.registry import Entry as RegistryEntry

    assert Entry is RegistryEntry  # plugins keep importing it from the registry


def test_registry_names_equal_stage_names_and_old_names_still_resolve():
    from mmrank import registry

    for name in registry.names("reranker")["reranker"]:
        cls = registry.resolve("reranker", name)
        assert cls.name == name, f"registry name {name!r} but stage name {cls.name!r}"
    assert registry.entry("reranker", "listwise").name == "rankgpt"
    assert registry.entry("reranker", "setwise").name == "rank-r1"
    assert registry.entry("reranker", "rank_r1").name == "rank-r1"


def test_one_name_for_the_model_handle():
    """Every reranker calls its model backend ``lm`` (no ``llm`` / ``backend`` attributes or arguments)."""
    for path in sorted(RERANK.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                assert node.attr not in ("llm", "_llm", "backend"), f"{path.name}: self.{node.attr}"
            if isinstance(node, ast.arg):
                assert node.arg not in ("llm", "backend"), f"{path.name}: argument {node.arg}"


def test_no_dead_helpers_and_package_data_exists():
    import mmrank.rerank.base as base

    assert not hasattr(base, "describe")
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in cfg["tool"]["setuptools"]["package-data"]["mmrank"]:
        assert list((ROOT / "mmrank").glob(pattern)), f"package-data {pattern!r} matches no file"


def test_prompt_names_accept_dash_or_underscore():
    from mmrank.prompts import load_prompt

    assert load_prompt("yes-no") is load_prompt("yes_no")
    assert load_prompt("rank-r1").name == "rank_r1"


def test_output_patterns_live_in_the_prompts_only():
    """Parsers take their patterns from the YAML prompts: no regex literal for a model output in the rerankers."""
    for path in sorted(RERANK.glob("*.py")):
        src = path.read_text()
        for marker in ("<answer>", "```json", "</think>"):
            for node in ast.walk(ast.parse(src)):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("compile", "search", "findall"):
                    for arg in node.args[:1]:
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                            assert marker not in arg.value, f"{path.name}: output regex {arg.value!r} in code"
        assert "THINK_ANSWER =" not in src and "_ANSWER = re.compile" not in src, path.name
