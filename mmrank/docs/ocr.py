"""OCR of rendered pages with RapidOCR (PP-OCR detector + recogniser as ONNX models, offline, pip-only)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mmrank.errors import MissingDependencyError

if TYPE_CHECKING:
    from PIL import Image


@lru_cache(maxsize=1)
def _engine() -> Any:
    import logging

    try:
        from rapidocr import RapidOCR
    except ModuleNotFoundError as e:
        raise MissingDependencyError("OCR needs rapidocr and onnxruntime: pip install rapidocr onnxruntime") from e
    engine = RapidOCR()
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # per-page INFO/"nothing detected" lines are noise here
    return engine


def ocr_text(image: Image.Image) -> str:
    """The text RapidOCR reads on ``image``, one detected line per line, top to bottom."""
    import numpy as np

    result = _engine()(np.asarray(image.convert("RGB")))
    txts = getattr(result, "txts", None) or ()
    return "\n".join(str(t) for t in txts)
