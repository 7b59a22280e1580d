"""The real server (uvicorn subprocess) answers every endpoint; the guards hold (API key, upload limits, path
confinement, JSON errors); micro-batching groups concurrent requests."""

from __future__ import annotations

import asyncio
import io
import os
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.serve.conftest import API_KEY
from tests.tiny_vision import _png_header_only

KEY = {"Authorization": f"Bearer {API_KEY}"}


def _jpeg(path) -> bytes:
    return path.read_bytes()


def test_healthz_is_open_everything_else_needs_the_key(server):
    assert httpx.get(server + "/healthz").json() == {"status": "ok"}
    for method, path in [("GET", "/"), ("GET", "/openapi.json"), ("POST", "/search"), ("POST", "/rerank")]:
        r = httpx.request(method, server + path)
        assert r.status_code == 401 and "API key" in r.json()["error"]
        r = httpx.request(method, server + path, headers={"X-API-Key": "wrong"})
        assert r.status_code == 401
    schema = httpx.get(server + "/openapi.json", headers=KEY).json()
    assert {"/search", "/rerank", "/healthz", "/image/{item_id}"} <= set(schema["paths"])
    assert "/ask" not in schema["paths"]  # an image folder cannot answer questions


def test_text_search(server, image_index):
    r = httpx.post(server + "/search", data={"text": "a photo of a cat", "k": "3"}, headers=KEY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["modality"] == "text" and body["collection"] == "images" and len(body["hits"]) == 3
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    h = body["hits"][0]
    assert h["modality"] == "image" and h["image_url"].startswith("/image/") and h["page"] is None
    assert body["provenance"]["stage"].startswith("search:")


def test_image_search_finds_the_same_photo_first(server, image_index):
    photo = image_index.parent / "photos" / "coffee.jpg"
    r = httpx.post(server + "/search", files={"image": ("coffee.jpg", _jpeg(photo), "image/jpeg")}, headers=KEY)
    assert r.status_code == 200, r.text
    top = r.json()["hits"][0]
    assert r.json()["modality"] == "image" and top["id"] == "coffee.jpg"
    assert top["score"] == pytest.approx(1.0, abs=1e-4)  # cosine of an image with itself


def test_search_with_rerank_and_rerank_endpoint(server):
    # photos have no text for a text reranker to read: the search order is kept, and the response says why
    r = httpx.post(server + "/search", data={"text": "cat", "k": "4", "rerank": "true"}, headers=KEY)
    plain = httpx.post(server + "/search", data={"text": "cat", "k": "4"}, headers=KEY).json()
    assert r.status_code == 200 and r.json()["provenance"]["stage"] == plain["provenance"]["stage"]
    assert [h["id"] for h in r.json()["hits"]] == [h["id"] for h in plain["hits"]]
    assert any(f.startswith("rerank skipped") for f in r.json()["provenance"]["fallbacks"])
    docs = ["Dogs bark at night.", "Paris is the capital of France.", "The cat sat on the mat."]
    r = httpx.post(
        server + "/rerank", json={"query": "What is the capital of France?", "documents": docs, "top_n": 2}, headers=KEY
    )
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert len(res) == 2 and res[0]["index"] == 1 and res[0]["document"]["text"] == docs[1]
    assert res[0]["relevance_score"] > res[1]["relevance_score"]
    # documents as objects with "text" (Cohere's structured form), no documents echoed back
    r = httpx.post(
        server + "/rerank",
        json={"query": "dogs", "documents": [{"text": d} for d in docs], "return_documents": False},
        headers=KEY,
    )
    assert r.json()["results"][0]["index"] == 0 and "document" not in r.json()["results"][0]


def test_thumbnails_and_confinement(server, image_index):
    r = httpx.get(server + "/image/chelsea.jpg?size=128", headers=KEY)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(r.content)).size) <= 128
    for bad in ["..%2Fsecret.txt", "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"]:
        r = httpx.get(server + "/image/" + bad, headers=KEY)
        assert r.status_code in (403, 404) and "error" in r.json(), bad
    assert httpx.get(server + "/image/..%2Fsecret.txt", headers=KEY).status_code == 403
    link = image_index.parent / "photos" / "escape.jpg"
    os.symlink(image_index.parent / "secret.txt", link)
    try:
        r = httpx.get(server + "/image/escape.jpg", headers=KEY)
        assert r.status_code == 403 and "outside" in r.json()["error"]
    finally:
        link.unlink()


def test_upload_limits(server):
    big = b"\xff\xd8" + os.urandom(11 << 20)
    r = httpx.post(server + "/search", files={"image": ("big.jpg", big, "image/jpeg")}, headers=KEY)
    assert r.status_code == 413 and "error" in r.json()
    bomb = _png_header_only(20_000, 20_000)
    r = httpx.post(server + "/search", files={"image": ("bomb.png", bomb, "image/png")}, headers=KEY)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    r = httpx.post(server + "/search", files={"image": ("x.jpg", b"not an image", "image/jpeg")}, headers=KEY)
    assert r.status_code == 400 and "cannot decode" in r.json()["error"]


def test_bad_requests_are_json_never_a_trace(server):
    h = {**KEY, "content-type": "application/json"}
    r = httpx.post(server + "/rerank", content=b'{"query": "x", "documents": [', headers=h)
    assert r.status_code == 422 and "JSON" in r.json()["error"] and "Traceback" not in r.text
    r = httpx.post(server + "/rerank", json={"query": "x", "documents": []}, headers=KEY)
    assert r.status_code == 422
    r = httpx.post(server + "/search", data={"k": "3"}, headers=KEY)
    assert r.status_code == 422 and "text, an image" in r.json()["error"]
    r = httpx.post(server + "/search", data={"text": "x", "k": "0"}, headers=KEY)
    assert r.status_code == 422
    r = httpx.get(server + "/no/such/route", headers=KEY)
    assert r.status_code == 404 and "error" in r.json()
    r = httpx.post(server + "/ask", json={"question": "?"}, headers=KEY)
    assert r.status_code == 404  # no page QA on an image folder


def test_non_loopback_without_key_refuses_to_start(image_index, capsys):
    from mmrank.cli.main import main

    assert main(["serve", str(image_index), "--host", "0.0.0.0"]) == 2
    assert "without an API key" in capsys.readouterr().err


# --- in-process: the micro-batcher and the /ask plug-in --------------------------------------------------
def test_micro_batcher_groups_concurrent_requests_and_shares_errors():
    from mmrank.serve.batcher import MicroBatcher, Overloaded

    async def go(max_batch: int) -> list[int]:
        b = MicroBatcher(lambda xs: [x * 2 for x in xs], max_batch=max_batch, max_wait_ms=50)
        await b.start()
        out = await asyncio.gather(*(b.submit(i) for i in range(8)))
        await b.stop()
        assert out == [2 * i for i in range(8)]
        return b.batches

    assert asyncio.run(go(16)) == [8]
    assert asyncio.run(go(1)) == [1] * 8

    async def failing() -> None:
        def boom(xs):
            raise ValueError("model fell over")

        b = MicroBatcher(boom, max_wait_ms=20)
        await b.start()
        res = await asyncio.gather(b.submit(1), b.submit(2), return_exceptions=True)
        assert all(isinstance(e, ValueError) for e in res)
        await b.stop()
        q = MicroBatcher(lambda xs: time.sleep(0.3) or xs, max_batch=1, max_queue=1, max_wait_ms=0)
        await q.start()
        res = await asyncio.gather(*(q.submit(i) for i in range(3)), return_exceptions=True)
        assert any(isinstance(e, Overloaded) for e in res) and 0 in res  # the first is answered, a later one refused
        await q.stop()

    asyncio.run(failing())


def test_ask_route_appears_when_the_collection_can_answer(tmp_path):
    from fastapi.testclient import TestClient

    from mmrank.retrieve.text_index import TextSearch, index_corpus
    from mmrank.serve import create_app
    from mmrank.types import Corpus, Item, PageRef

    corpus = Corpus(
        [
            Item("rep#1", text="Revenue grew 12 percent in 2023.", page=PageRef("rep", 1)),
            Item("rep#2", text="The board met four times.", page=PageRef("rep", 2)),
        ]
    )
    index_corpus(corpus, tmp_path / "idx", retriever="bm25")

    class Extractive(TextSearch):
        """Answers with the best page's text and cites it (what a page-QA collection returns)."""

        def ask(self, question: str, k: int = 5) -> dict:
            r = self.search(question, k)
            return {"answer": r.hits[0].item.text, "pages": [{"doc_id": "rep", "page": 1 + r.ids.index(r.ids[0])}]}

    with TestClient(create_app(tmp_path / "idx", collection=Extractive(tmp_path / "idx"))) as c:
        r = c.post("/ask", json={"question": "How much did revenue grow?"})
        assert r.status_code == 200 and "12 percent" in r.json()["answer"] and r.json()["pages"]
        assert c.post("/ask", json={}).status_code == 422
        hits = c.post("/search", data={"text": "board meetings"}).json()["hits"]
        assert hits[0]["id"] == "rep#2" and hits[0]["modality"] == "text"
    np.testing.assert_equal(len(hits), 1)
