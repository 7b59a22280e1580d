"""Open any index folder the library writes, whatever its modality.

Every index family writes a *marker* file at the root of its folder (its commit point) and registers a
``"collection"`` entry named after that file in :mod:`mmrank.catalog`. :func:`open_index` finds the marker and
returns the family's :class:`Collection`, so the CLI, the service and scripts never test for index kinds themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mmrank.errors import DataFormatError
from mmrank.types import Item, Query, Ranking


@runtime_checkable
class Collection(Protocol):
    """What every opened index offers: search with a :class:`Query` and item lookup by id.

    Optional, used by the service when present: ``search_batch(queries, k) -> list[Ranking]`` (several queries in
    one model call: micro-batching) and ``query_error(query) -> str | None`` (why the index cannot answer a query,
    e.g. a composed one on a text index, so that it is refused with 400 before it joins a batch).
    """

    kind: str

    def search(self, query: Query, k: int = 10) -> Ranking: ...

    def item(self, item_id: str) -> Item: ...


def open_index(index_dir: str | Path, **kwargs: Any) -> Collection:
    """Open the index in ``index_dir`` (its marker file decides the family); ``kwargs`` go to the family's opener."""
    from mmrank import registry

    d = Path(index_dir)
    if not d.is_dir():
        raise DataFormatError(f"{d}: no such index folder")
    markers = [e.name for e in registry.entries("collection")]
    found = [m for m in markers if (d / m).is_file()]
    if not found:
        raise DataFormatError(
            f"{d}: not an mmrank index (none of {', '.join(markers)} is there); build one with `mmrank index`"
        )
    if len(found) > 1:
        raise DataFormatError(f"{d}: holds the markers of several index families ({', '.join(found)})")
    opener = registry.resolve("collection", found[0])
    return opener(d, **kwargs)  # type: ignore[no-any-return]
