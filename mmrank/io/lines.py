"""Line-level reading with precise errors (file and 1-based line) for every text format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmrank.errors import DataFormatError


def iter_lines(path: str | Path, *, skip_blank: bool = True) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)``; non-UTF-8 bytes raise :class:`DataFormatError` naming the line."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError("no such file", p)
    with open(p, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataFormatError(f"invalid UTF-8 at byte {e.start} ({raw[e.start : e.start + 4]!r})", p, n) from e
            line = line.rstrip("\r\n")
            if n == 1:
                line = line.lstrip("\ufeff")
            if skip_blank and not line.strip():
                continue
            yield n, line


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for a JSON-lines file; each line must be a JSON object."""
    for n, line in iter_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFormatError(f"not valid JSON ({e.msg} at column {e.colno})", path, n) from e
        except RecursionError as e:
            raise DataFormatError("JSON nested too deeply", path, n) from e
        if not isinstance(obj, dict):
            raise DataFormatError(f"expected a JSON object, got {type(obj).__name__}", path, n)
        yield n, obj


def read_json(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise DataFormatError("no such file", p)
    try:
        return json.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DataFormatError(f"invalid UTF-8 at byte {e.start}", p) from e
    except json.JSONDecodeError as e:
        raise DataFormatError(f"not valid JSON ({e.msg})", p, e.lineno) from e
    except RecursionError as e:
        raise DataFormatError("JSON nested too deeply", p) from e


def require(obj: dict[str, Any], keys: tuple[str, ...], path: str | Path, line: int | None) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataFormatError(f"missing field(s) {', '.join(missing)}", path, line)
