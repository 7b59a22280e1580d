"""The HTTP service (FastAPI + uvicorn): search, rerank, ask and a results page over any mmrank index."""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`mmrank.serve.app.create_app` (imported on use: FastAPI is loaded only when serving)."""
    from mmrank.serve.app import create_app as _create

    return _create(*args, **kwargs)


__all__ = ["create_app"]
