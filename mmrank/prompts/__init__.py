"""Prompts as data: one YAML file per method under ``mmrank/prompts/``, loaded with ``yaml.safe_load``.

A file holds ``system``, ``user`` (templates with ``{field}`` placeholders), ``output_regex`` (the parser's pattern,
kept beside the template it parses), ``defaults`` (field values and method settings) and ``source`` (the paper).
Any other top-level key (e.g. a per-passage template) is kept in ``extra`` and rendered with :meth:`render_extra`.
Only ``{identifier}`` placeholders are substituted, so literal JSON braces (``{"[1]": 5}``) need no escaping; a
placeholder with no value raises :class:`DataFormatError`. Names are file stems; ``-`` and ``_`` are interchangeable.

    >>> p = load_prompt("yes-no")  # mmrank/prompts/yes_no.yaml
    >>> p.messages(query="q", document="d")[1]["content"].splitlines()[1:]
    ['<Query>: q', '<Document>: d']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mmrank.errors import DataFormatError, UnknownNameError

PROMPT_DIR = Path(__file__).resolve().parent
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(template: str, values: dict[str, Any], *, where: str = "template") -> str:
    """Substitute ``{name}`` placeholders from ``values``; other braces stay as they are."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise DataFormatError(f"{where}: no value for placeholder {{{key}}}")
        return str(values[key])

    return _FIELD.sub(sub, template)


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str | None
    user: str | None
    output_regex: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> set[str]:
        """Placeholder names used by the system and user templates."""
        return set(_FIELD.findall(self.user or "")) | set(_FIELD.findall(self.system or ""))

    def _values(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **fields}

    def render(self, **fields: Any) -> str:
        """The user message with ``fields`` (over ``defaults``) filled in."""
        if self.user is None:
            raise DataFormatError(f"prompt {self.name!r} has no 'user' template")
        return fill(self.user, self._values(fields), where=f"prompt {self.name!r} user")

    def render_system(self, **fields: Any) -> str | None:
        if self.system is None:
            return None
        return fill(self.system, self._values(fields), where=f"prompt {self.name!r} system")

    def render_extra(self, key: str, **fields: Any) -> str:
        """Render one of the additional templates stored under ``extra`` (e.g. a raw, non-chat layout)."""
        if not isinstance(self.extra.get(key), str):
            raise UnknownNameError(f"prompt {self.name!r} has no template {key!r}; it has {sorted(self.extra)}")
        return fill(self.extra[key], self._values(fields), where=f"prompt {self.name!r} {key}")

    def messages(self, **fields: Any) -> list[dict[str, str]]:
        """``[{"role": "system", ...}, {"role": "user", ...}]`` (no system message when the template has none)."""
        out = []
        system = self.render_system(**fields)
        if system is not None:
            out.append({"role": "system", "content": system})
        out.append({"role": "user", "content": self.render(**fields)})
        return out

    def regex(self) -> re.Pattern[str]:
        if self.output_regex is None:
            raise DataFormatError(f"prompt {self.name!r} defines no output_regex")
        return re.compile(self.output_regex, re.DOTALL)


def prompt_names() -> list[str]:
    return sorted(p.stem for p in PROMPT_DIR.glob("*.yaml"))


def load_prompt(name: str, path: str | Path | None = None) -> PromptTemplate:
    """Load ``mmrank/prompts/{name}.yaml`` (or the YAML file at ``path``, for user-supplied prompts)."""
    if path is not None:
        return _parse(Path(path), name)
    name = name.strip().replace("-", "_")
    p = PROMPT_DIR / f"{name}.yaml"
    if not p.is_file():
        raise UnknownNameError(f"no prompt named {name!r}; known: {', '.join(prompt_names())}")
    return _load_packaged(name)


@cache
def _load_packaged(name: str) -> PromptTemplate:
    return _parse(PROMPT_DIR / f"{name}.yaml", name)


def _parse(path: Path, name: str) -> PromptTemplate:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise DataFormatError(f"invalid YAML: {e}", path) from e
    if not isinstance(data, dict):
        raise DataFormatError("a prompt file must hold a mapping", path)
    for key in ("system", "user", "output_regex"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise DataFormatError(f"{key!r} must be a string", path)
    known = {"name", "system", "user", "output_regex", "defaults", "source", "extra"}
    extra = dict(data.get("extra") or {})
    extra |= {k: v for k, v in data.items() if k not in known}  # other keys (e.g. per-passage templates)
    return PromptTemplate(
        name=str(data.get("name", name)),
        system=data.get("system"),
        user=data["user"],
        output_regex=data.get("output_regex"),
        defaults=dict(data.get("defaults") or {}),
        source=str(data.get("source", "")),
        extra=extra,
    )
