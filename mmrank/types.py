"""The one data model shared by every modality.

* :class:`Item` -- a retrievable unit: text, an image, or a document page (image + text).
* :class:`Query` -- text, image, or a composed query (reference image + modification text).
* :class:`Hit` / :class:`Ranking` / :class:`Run` -- ordered results per query with their provenance
  (which stage produced them, how many model calls it made, which fallbacks fired).

A :class:`Run` is the only thing passed between stages, so any reranker can follow any retriever.
Images are never decoded eagerly: an item keeps a path (or bytes) and decodes on :meth:`Item.load_image`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

from mmrank.errors import DataFormatError, ImageLoadError

if TYPE_CHECKING:
    from PIL import Image as PILImage


@runtime_checkable
class LazyImage(Protocol):
    """An image made on demand (e.g. a PDF page rendered when first read): :func:`load_image` calls
    :meth:`load_pil`. Implementations are small, frozen, picklable records (they travel to worker processes)."""

    def load_pil(self) -> PILImage.Image: ...


ImageSource = Union[str, Path, bytes, "PILImage.Image", LazyImage]

# Decompression-bomb guard: Pillow warns above this many pixels; we raise.
MAX_IMAGE_PIXELS = 178_956_970


@dataclass(frozen=True, slots=True)
class PageRef:
    """A page of a document. ``page`` is 1-based, as in MMDocIR / MMLongBench-Doc evidence labels."""

    doc_id: str
    page: int

    def __post_init__(self) -> None:
        if self.page < 1:
            raise ValueError(f"page numbers are 1-based, got {self.page}")


def load_image(source: ImageSource, *, mode: str = "RGB") -> PILImage.Image:
    """Decode an image from a path, bytes or a PIL image, converted to ``mode``.

    Handles palette, alpha, CMYK and 16-bit images; raises :class:`ImageLoadError` on a zero-byte,
    corrupt, truncated file or a decompression bomb. Pillow's process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` is
    read, never written: truncated files are refused unless the application itself opted in by setting it to
    ``True`` (Pillow has no per-image switch; writing the global would race with other threads and undo the
    application's choice).
    """
    import warnings

    from PIL import Image, ImageOps

    if isinstance(source, Image.Image):
        img = source
        name = "<PIL image>"
    elif isinstance(source, LazyImage):
        img = source.load_pil()
        name = str(source)
        if img.width * img.height > MAX_IMAGE_PIXELS:
            raise ImageLoadError(f"{name}: {img.width}x{img.height} exceeds the decompression-bomb limit")
    else:
        name = "<bytes>" if isinstance(source, bytes) else str(source)
        data: Any = io.BytesIO(source) if isinstance(source, bytes) else source
        if not isinstance(source, bytes):
            p = Path(source)
            if not p.is_file():
                raise ImageLoadError(f"{name}: no such image file")
            if p.stat().st_size == 0:
                raise ImageLoadError(f"{name}: zero-byte file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(data)
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise ImageLoadError(f"{name}: {img.width}x{img.height} exceeds the decompression-bomb limit")
                img.load()
                img = ImageOps.exif_transpose(img)  # camera photos: honour the EXIF orientation tag
        except ImageLoadError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageLoadError(f"{name}: decompression bomb ({e})") from e
        except Exception as e:  # PIL raises many types: UnidentifiedImageError, OSError, SyntaxError...
            raise ImageLoadError(f"{name}: cannot decode image ({type(e).__name__}: {e})") from e
    if img.mode == mode:
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grey: rescale to 8 bits before RGB
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        img = Image.fromarray((arr * (255.0 / hi)).astype("uint8"), mode="L")
    if img.mode in ("P", "PA", "LA", "RGBA") and mode == "RGB":
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return img.convert(mode)


@dataclass(slots=True)
class Item:
    """A retrievable unit. At least one of ``text`` / ``image`` is set.

    ``image`` is a path, raw bytes or a PIL image; it is decoded only by :meth:`load_image`.
    ``page`` marks a document page (the item then usually has both an image and a text layer).
    """

    id: str
    text: str | None = None
    image: ImageSource | None = None
    title: str | None = None
    page: PageRef | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id = str(self.id)
        if not self.id:
            raise DataFormatError("item id is empty")
        for name in ("text", "title"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise DataFormatError(f"item {self.id!r}: {name} must be a string, not {type(v).__name__}")

    @property
    def modality(self) -> str:
        """``"page"``, ``"image+text"``, ``"image"`` or ``"text"``."""
        if self.page is not None:
            return "page"
        if self.image is not None:
            return "image+text" if self.text else "image"
        return "text"

    @property
    def full_text(self) -> str:
        """Title and text joined the way most text rerankers expect (``"title text"``)."""
        parts = [p for p in (self.title, self.text) if p]
        return " ".join(parts)

    def load_image(self, mode: str = "RGB") -> PILImage.Image:
        if self.image is None:
            raise ImageLoadError(f"item {self.id!r} has no image")
        return load_image(self.image, mode=mode)


@dataclass(slots=True)
class Query:
    """A query: text, an image, or both (a *composed* query: reference image + modification text)."""

    id: str
    text: str | None = None
    image: ImageSource | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id = str(self.id)
        if self.text is not None and not isinstance(self.text, str):
            raise DataFormatError(f"query {self.id!r}: text must be a string, not {type(self.text).__name__}")
        if self.text is not None and not self.text.strip() and self.image is None:
            raise DataFormatError(f"query {self.id!r} has empty text and no image")
        if self.text is None and self.image is None:
            raise DataFormatError(f"query {self.id!r} has neither text nor image")

    @property
    def composed(self) -> bool:
        return self.image is not None and bool(self.text)

    @property
    def modality(self) -> str:
        if self.composed:
            return "composed"
        return "image" if self.image is not None else "text"

    def load_image(self, mode: str = "RGB") -> PILImage.Image:
        if self.image is None:
            raise ImageLoadError(f"query {self.id!r} has no image")
        return load_image(self.image, mode=mode)


@dataclass(slots=True)
class Hit:
    """One ranked result. ``item`` is attached when the content is known (rank_llm JSON, ``Run.attach``)."""

    id: str
    score: float
    item: Item | None = None


@dataclass(slots=True)
class Ranking:
    """Ordered hits for one query, best first, plus the provenance of the stage that made them.

    ``meta`` holds what a stage decided beyond the order, keyed by stage (e.g. MM-R5 keeps each window's
    reasoning and answer under ``meta["mm-r5"]``); it is not written to run files.
    """

    query_id: str
    hits: list[Hit]
    stage: str = ""
    model_calls: int = 0
    fallbacks: list[str] = field(default_factory=list)
    query: Query | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for h in self.hits:
            if h.id in seen:
                raise DataFormatError(f"query {self.query_id!r}: duplicate doc id {h.id!r} in ranking")
            seen.add(h.id)

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self) -> Iterator[Hit]:
        return iter(self.hits)

    @property
    def ids(self) -> list[str]:
        return [h.id for h in self.hits]

    @property
    def scores(self) -> list[float]:
        return [h.score for h in self.hits]

    def top(self, k: int | None) -> Ranking:
        return replace(self, hits=self.hits[:k] if k is not None else list(self.hits))

    def sorted(self) -> Ranking:
        """Hits sorted by descending score (stable: ties keep their order). NaN scores sort last, never first."""
        return replace(self, hits=sorted(self.hits, key=lambda h: (h.score != h.score, -h.score)))


class Run(Mapping[str, Ranking]):
    """Rankings keyed by query id, in insertion order. The only object passed between stages."""

    def __init__(self, rankings: Iterable[Ranking] = (), name: str = "mmrank") -> None:
        self.name = name
        self._r: dict[str, Ranking] = {}
        for r in rankings:
            if r.query_id in self._r:
                raise DataFormatError(f"run {name!r}: query {r.query_id!r} appears twice")
            self._r[r.query_id] = r

    def __getitem__(self, qid: str) -> Ranking:
        return self._r[qid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._r)

    def __len__(self) -> int:
        return len(self._r)

    def __repr__(self) -> str:
        return f"Run(name={self.name!r}, queries={len(self)})"

    def top(self, k: int | None) -> Run:
        return Run((r.top(k) for r in self.values()), name=self.name)

    def attach(self, corpus: Mapping[str, Item], *, strict: bool = True) -> Run:
        """Return a run whose hits carry their items from ``corpus`` (needed by rerankers).

        With ``strict=False`` hits whose id is not in the corpus are dropped and recorded as a fallback.
        """
        out = []
        for r in self.values():
            hits, missing = [], []
            for h in r.hits:
                item = h.item if h.item is not None else corpus.get(h.id)
                if item is None:
                    missing.append(h.id)
                    continue
                hits.append(Hit(h.id, h.score, item))
            fb = list(r.fallbacks)
            if missing:
                if strict:
                    raise DataFormatError(
                        f"query {r.query_id!r}: {len(missing)} hit ids not in corpus, e.g. {missing[:3]}"
                    )
                fb.append(f"dropped {len(missing)} hits missing from corpus")
            out.append(replace(r, hits=hits, fallbacks=fb))
        return Run(out, name=self.name)

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{qid: {docid: score}}`` (the ir_measures / pytrec_eval run layout)."""
        return {q: {h.id: float(h.score) for h in r.hits} for q, r in self.items()}

    def provenance(self) -> dict[str, Any]:
        """Summary of stages, model calls and fallbacks over all queries."""
        fallbacks: dict[str, int] = {}
        for r in self.values():
            for f in r.fallbacks:
                fallbacks[f] = fallbacks.get(f, 0) + 1
        return {
            "stages": sorted({r.stage for r in self.values()}),
            "model_calls": sum(r.model_calls for r in self.values()),
            "fallbacks": fallbacks,
        }


class Corpus(Mapping[str, Item]):
    """Items keyed by id, in insertion order. Holds metadata only: images stay on disk until used."""

    def __init__(self, items: Iterable[Item] = (), name: str = "corpus") -> None:
        self.name = name
        self._items: dict[str, Item] = {}
        for it in items:
            if it.id in self._items:
                raise DataFormatError(f"corpus {name!r}: duplicate item id {it.id!r}")
            self._items[it.id] = it

    def __getitem__(self, key: str) -> Item:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Corpus(name={self.name!r}, items={len(self)})"

    @property
    def ids(self) -> list[str]:
        return list(self._items)

    def add(self, item: Item) -> None:
        if item.id in self._items:
            raise DataFormatError(f"corpus {self.name!r}: duplicate item id {item.id!r}")
        self._items[item.id] = item


Qrels = dict[str, dict[str, int]]
"""``{qid: {docid: graded relevance}}``."""
