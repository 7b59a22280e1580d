"""Helpers shared by CLI subcommands."""

from __future__ import annotations

import json
import sys
from typing import Any

from mmrank.errors import MmrankError


def emit(args: Any, payload: Any, text: str | None = None) -> None:
    """Print ``payload`` as one JSON document with ``--json``, else ``text`` (or a readable dump)."""
    if getattr(args, "json", False):
        json.dump(payload, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(text if text is not None else json.dumps(payload, indent=2, ensure_ascii=False))


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["top_p=0.8", "fusion=zscore"]`` -> kwargs; values are parsed as JSON when they can be."""
    out: dict[str, Any] = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise MmrankError(f"--option expects key=value, got {p!r}")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = value
    return out
