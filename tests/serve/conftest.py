"""One real server per test session: uvicorn in a subprocess on a free loopback port, over a tiny image index
(a randomly initialised transformers CLIP built from config) with the real MiniLM bi-encoder as its reranker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
API_KEY = "test-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: list[str], env: dict[str, str] | None = None, timeout: float = 90.0):
    """Start ``mmrank serve ARGS`` on a free loopback port; returns ``(process, base_url)`` once /healthz answers."""
    import httpx

    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmrank.cli.main", "serve", *args, "--port", str(port)],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {out[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not answer /healthz in time")


def stop_server(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def image_index(tmp_path_factory) -> Path:
    import torch

    from mmrank import registry
    from mmrank.vision import index_folder
    from tests.tiny_vision import save_tiny_hf_clip, write_photos

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("serve")
    write_photos(root / "photos", size=64)
    clip = save_tiny_hf_clip(root / "clip")
    enc = registry.encoder("hf-clip", model=str(clip), device="cpu")
    index_folder(root / "photos", root / "idx", encoder=enc, index="exact")
    (root / "secret.txt").write_text("outside the index")
    return root / "idx"


@pytest.fixture(scope="session")
def server(image_index):
    proc, url = start_server(
        # a 20 ms batching window (5 ms by default) so that concurrent test requests reliably share a batch
        [str(image_index), "--reranker", "bi-encoder", "--api-key-env", "MMRANK_TEST_KEY", "--max-wait-ms", "20"],
        env={"MMRANK_TEST_KEY": API_KEY},
    )
    yield url
    stop_server(proc)
