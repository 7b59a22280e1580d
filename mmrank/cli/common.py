"""Helpers shared by CLI subcommands."""

from __future__ import annotations

import argparse
import collections.abc as cabc
import inspect
import json
import math
import sys
import types
import typing
from typing import Any

from mmrank.errors import MmrankError, OptionError


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN / infinite float replaced by ``None`` (JSON has no NaN; ``--json`` prints ``null``)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", None) == 0:  # numpy scalars
        return json_safe(obj.item())
    return obj


def emit(args: Any, payload: Any, text: str | None = None) -> None:
    """Print ``payload`` as one JSON document with ``--json``, else ``text`` (or a readable dump).

    JSON output is always valid JSON: a NaN or infinite value is written as ``null``.
    """
    safe = json_safe(payload)
    if getattr(args, "json", False):
        json.dump(safe, sys.stdout, ensure_ascii=False, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(text if text is not None else json.dumps(safe, indent=2, ensure_ascii=False, allow_nan=False))


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (counts, depths, cutoffs)."""
    try:
        v = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from e
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["top_p=0.8", "fusion=zscore"]`` -> kwargs; values are parsed as JSON when they can be."""
    out: dict[str, Any] = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"--option expects key=value, got {p!r}")
        if not key.replace("-", "_").isidentifier():
            raise OptionError(f"--option key {key!r} is not a valid option name")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            out[key.replace("-", "_")] = value
    return out


def _accepts(value: Any, hint: Any) -> bool:
    """Whether ``value`` (parsed from JSON) fits the annotation ``hint``; unknown annotations accept anything."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, cabc.Sequence):
        return isinstance(value, (list, tuple))
    if origin in (dict, cabc.Mapping) or hint is dict:
        return isinstance(value, dict)
    return True


def check_options(factory: Any, options: dict[str, Any], what: str) -> None:
    """Refuse options ``factory`` does not take (unless it takes ``**kwargs``) and values of the wrong type,
    naming the option and the accepted names."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = {n: p for n, p in sig.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    try:
        target = getattr(factory, "__init__", factory) if isinstance(factory, type) else factory
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: check names only
        hints = {}
    accepted = ", ".join(sorted(n for n in params if n != "self")) or "none"
    for key, value in options.items():
        if key not in params:
            if takes_any:
                continue
            raise OptionError(f"{what} takes no option {key!r}; options are: {accepted}")
        if key in hints and not _accepts(value, hints[key]):
            raise OptionError(
                f"{what}: option {key}={json.dumps(value, default=str)} has the wrong type "
                f"(expected {getattr(hints[key], '__name__', None) or str(hints[key]).replace('typing.', '')})"
            )


def build(kind: str, name: str, options: dict[str, Any]) -> Any:
    """Create a registered method from CLI options: option names and types are checked first, and a
    ``TypeError`` / ``ValueError`` raised by the constructor becomes an :class:`OptionError` naming the method."""
    from mmrank import registry

    factory = registry.resolve(kind, name)
    what = f"{kind} {name!r}"
    check_options(factory, options, what)
    try:
        return factory(**options)
    except MmrankError:
        raise
    except (TypeError, ValueError) as e:
        raise OptionError(f"{what}: bad option(s) {sorted(options)}: {e}") from e
