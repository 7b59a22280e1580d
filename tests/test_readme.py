"""The README stays true: its Python examples run, and CI runs its exact test command."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_python_examples_run(tmp_path):
    namespace: dict[str, object] = {"__name__": "__readme__"}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in _blocks("python"):
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)


def test_exactly_two_setup_commands_and_ci_uses_the_test_one():
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = [b.strip() for b in re.findall(r"```bash\n(.*?)```", setup, flags=re.S)]
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    demo, tests = commands
    assert demo.endswith("mmrank demo") and "pytest" in tests
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci.splitlines()


def test_readme_cli_names_are_registered():
    from mmrank.registry import entry

    for kind, name in re.findall(r"--(reranker|retriever|encoder) ([a-z0-9-]+)", README):
        entry(kind, name)  # raises UnknownNameError for a stale name
