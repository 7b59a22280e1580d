"""ColPali / ColQwen2 multi-vector encoders with tiny models built from config (random weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmrank.encoders.multivector import ColPaliEncoder, ColQwen2Encoder, get_multivector_encoder
from mmrank.errors import ContextLengthError, DataFormatError, ImageLoadError, ModelNotFoundError
from mmrank.index.maxsim import MultiVectorIndex, maxsim_naive
from mmrank.types import Item, Query
from tests.tiny_colvision import save_tiny_colpali, save_tiny_colqwen2
from tests.tiny_vlm import colour_image

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("colvision")
    return {"colqwen2": save_tiny_colqwen2(root / "cq"), "colpali": save_tiny_colpali(root / "cp")}


def reference(family, path, images, texts):
    """The model card's recipe: processor -> model -> embeddings, padding rows removed by the attention mask."""
    import transformers

    model_cls = getattr(transformers, {"colpali": "ColPaliForRetrieval", "colqwen2": "ColQwen2ForRetrieval"}[family])
    proc_cls = getattr(transformers, {"colpali": "ColPaliProcessor", "colqwen2": "ColQwen2Processor"}[family])
    model, proc = model_cls.from_pretrained(path).eval(), proc_cls.from_pretrained(path)
    out = []
    for batch in (proc.process_images(images), proc.process_queries(texts)):
        with torch.no_grad():
            emb = model(**batch).embeddings
        out.append([e[m.bool()] for e, m in zip(emb, batch["attention_mask"], strict=True)])
    return out, proc


@pytest.mark.parametrize("family", ["colqwen2", "colpali"])
def test_shapes_order_and_scores_match_the_reference_recipe(models, family, tmp_path):
    path = str(models[family])
    enc = get_multivector_encoder("auto", path, batch_size=2, query_batch_size=2)
    assert type(enc).__name__ == "MultiVectorEncoder" and enc.family == family and enc.dim == 16
    sizes = [(56, 56), (28, 28), (40, 30), (56, 28)]
    images = [colour_image(c, s) for c, s in zip(["red", "blue", "green", "white"], sizes, strict=True)]
    items = [Item(f"p{i}", image=im) for i, im in enumerate(images)]
    texts = ["a red page with a long question about it", "blue", "green triangle"]
    mats = enc.encode_items(items)
    qmats = enc.encode_queries([Query(f"q{i}", text=t) for i, t in enumerate(texts)])
    (ref_docs, ref_q), proc = reference(family, path, images, texts)
    assert [m.shape for m in mats] == [tuple(r.shape) for r in ref_docs]  # input order kept despite size sorting
    for m, r in zip(mats + qmats, ref_docs + ref_q, strict=True):
        np.testing.assert_allclose(m, r.numpy(), atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-4)
    if family == "colqwen2":
        assert mats[0].shape[0] > mats[1].shape[0]  # larger images, more tokens
    ix = MultiVectorIndex(model_id=enc.model_id)
    ix.add(mats, [it.id for it in items], model_id=enc.model_id)
    docs = [ix.matrix(i).astype(np.float32) for i in range(4)]
    full = ix.scores(qmats)
    np.testing.assert_allclose(full, [[maxsim_naive(q, d) for d in docs] for q in qmats], rtol=1e-5, atol=1e-5)
    ref = proc.score_retrieval([torch.from_numpy(q) for q in qmats], [torch.from_numpy(d) for d in docs]).numpy()
    # score_retrieval zero-pads shorter pages: equal wherever no padded position can win
    longest = max(d.shape[0] for d in docs)
    ok = np.array([[(q @ d.T).max(1).min() >= 0 or d.shape[0] == longest for d in docs] for q in qmats])
    assert ok.any()
    np.testing.assert_allclose(full[ok], ref[ok], rtol=1e-4, atol=1e-4)


def test_family_classes_and_bad_input(models, tmp_path):
    enc = ColQwen2Encoder(str(models["colqwen2"]), max_query_tokens=20)
    with pytest.raises(ContextLengthError, match="budget"):
        enc.encode_texts(["word " * 50])
    with pytest.raises(DataFormatError, match="empty"):
        enc.encode_texts(["  "])
    with pytest.raises(DataFormatError, match="text queries"):
        enc.encode_queries([Query("q", image=colour_image("red"))])
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageLoadError, match="broken"):
        enc.encode_items([Item("ok", image=colour_image("red")), Item("bad", image=str(bad))])
    assert ColPaliEncoder(str(models["colpali"])).family == "colpali"
    with pytest.raises(ModelNotFoundError):
        ColPaliEncoder(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelNotFoundError):
        ColQwen2Encoder("vidore/no-such-colqwen2-hf")
