"""One rule per kind of value read from a file, shared by every reader (so TREC, BEIR and JSON agree).

* **Relevance grades** are integers: written ``2``, or ``2.0`` (a decimal with a zero fraction); anything else --
  ``1.9``, ``inf``, ``nan``, ``1e30``, text -- is rejected, and so is a grade outside ``[-2**31, 2**31 - 1]`` (the
  range trec_eval and pytrec_eval store).
* **Scores** are finite numbers. NaN and infinities are rejected wherever a run crosses a boundary (reading,
  writing, evaluating): NaN has no place in an order, and a run that is written and read back must rank alike.
  In JSON a score is a number or a numeric string; ``null``, ``true`` and other values are rejected.
* **Ids** are non-empty strings or JSON integers (kept as their decimal string); floats, booleans, lists and
  objects are rejected. Ids with whitespace cannot be written to TREC files (see :func:`trec_token`).
* **Text fields** (``text``, ``title``, query text) are strings or absent / ``null``; numbers and lists are
  rejected rather than silently converted.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from mmrank.errors import DataFormatError

GRADE_MIN, GRADE_MAX = -(2**31), 2**31 - 1
_INTEGRAL_DECIMAL = re.compile(r"^[+-]?\d+\.0*$")
_WS = re.compile(r"\s")


def parse_grade(text: str, path: str | Path | None, line: int | None) -> int:
    """A relevance grade (see the module rule)."""
    t = text.strip()
    try:
        g = int(t)
    except ValueError:
        if not _INTEGRAL_DECIMAL.match(t):
            raise DataFormatError(
                f"relevance {text!r} is not an integer grade (integers or decimals like 2.0 only)", path, line
            ) from None
        g = int(t.split(".")[0])
    if not GRADE_MIN <= g <= GRADE_MAX:
        raise DataFormatError(f"relevance {text!r} is outside the grade range [-2^31, 2^31-1]", path, line)
    return g


def parse_score(value: Any, path: str | Path | None, line: int | None, where: str = "") -> float:
    """A finite score from a TREC token or a JSON value (see the module rule)."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DataFormatError(f"{prefix}score {value!r} is not a number", path, line)
    try:
        s = float(value)
    except (ValueError, OverflowError):
        raise DataFormatError(f"{prefix}score {value!r} is not a number", path, line) from None
    if not math.isfinite(s):
        raise DataFormatError(
            f"{prefix}score {value!r} is not finite (NaN and infinities cannot be ranked)", path, line
        )
    return s


def parse_id(value: Any, path: str | Path | None, line: int | None, what: str = "id") -> str:
    """A record id: a non-empty string, or a JSON integer kept as its decimal string."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataFormatError(
            f"{what} {value!r} must be a string or an integer, not {type(value).__name__}", path, line
        )
    s = str(value)
    if not s.strip():
        raise DataFormatError(f"{what} is empty", path, line)
    return s


def text_field(obj: dict[str, Any], key: str, path: str | Path | None, line: int | None) -> str | None:
    """``obj[key]`` when it is a string; ``None`` when absent or null; otherwise :class:`DataFormatError`."""
    v = obj.get(key)
    if v is None or isinstance(v, str):
        return v
    raise DataFormatError(f"{key!r} must be a string, not {type(v).__name__} ({str(v)[:40]!r})", path, line)


def trec_token(value: str, what: str) -> str:
    """``value`` unchanged if it can be one whitespace-separated TREC field; else :class:`DataFormatError`."""
    if not value or _WS.search(value):
        raise DataFormatError(
            f"{what} {value!r} is empty or contains whitespace and cannot be written to a TREC file "
            "(it would not read back); rename it or write rank_llm JSON instead"
        )
    return value
