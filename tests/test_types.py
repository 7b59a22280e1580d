from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mmrank.errors import DataFormatError, ImageLoadError
from mmrank.types import Corpus, Hit, Item, PageRef, Query, Ranking, Run, load_image


def test_item_modalities():
    assert Item("a", text="t").modality == "text"
    assert Item("b", image="x.png").modality == "image"
    assert Item("c", image="x.png", text="caption").modality == "image+text"
    assert Item("d", image="p.png", text="layer", page=PageRef("doc", 3)).modality == "page"
    assert Item("e", title="T", text="body").full_text == "T body"


def test_query_kinds_and_empty():
    assert Query("q", text="red car").modality == "text"
    assert Query("q", image="x.png").modality == "image"
    assert Query("q", image="x.png", text="make it blue").composed
    with pytest.raises(DataFormatError):
        Query("q", text="   ")
    with pytest.raises(DataFormatError):
        Query("q")
    with pytest.raises(ValueError):
        PageRef("doc", 0)


def test_ranking_rejects_duplicate_ids():
    with pytest.raises(DataFormatError, match="duplicate"):
        Ranking("q", [Hit("a", 1.0), Hit("a", 0.5)])


def test_run_attach_and_provenance():
    corpus = Corpus([Item("a", text="x"), Item("b", text="y")])
    run = Run([Ranking("q1", [Hit("a", 2.0), Hit("zz", 1.0)], stage="s", model_calls=3, fallbacks=["f"])])
    with pytest.raises(DataFormatError, match="not in corpus"):
        run.attach(corpus)
    lenient = run.attach(corpus, strict=False)
    assert lenient["q1"].ids == ["a"]
    assert lenient["q1"].hits[0].item is corpus["a"]
    prov = lenient.provenance()
    assert prov["model_calls"] == 3
    assert set(prov["fallbacks"]) == {"f", "dropped 1 hits missing from corpus"}
    assert run.as_dict() == {"q1": {"a": 2.0, "zz": 1.0}}
    with pytest.raises(DataFormatError):
        Run([Ranking("q1", []), Ranking("q1", [])])


def test_corpus_duplicate_ids():
    with pytest.raises(DataFormatError):
        Corpus([Item("a", text="x"), Item("a", text="y")])


def _png(mode: str, size=(8, 8), color=None) -> bytes:
    buf = io.BytesIO()
    img = Image.new(mode, size, color if color is not None else 0)
    img.save(buf, format="PNG" if mode != "CMYK" else "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "I;16", "CMYK", "L"])
def test_load_image_converts_modes(mode):
    img = load_image(_png(mode))
    assert img.mode == "RGB" and img.size == (8, 8)


def test_load_image_alpha_composited_on_white():
    img = load_image(_png("RGBA", color=(255, 0, 0, 0)))  # fully transparent red
    assert img.getpixel((0, 0)) == (255, 255, 255)


def test_load_image_bad_inputs(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="zero-byte"):
        load_image(empty)
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(_png("RGB", size=(64, 64))[:60])
    with pytest.raises(ImageLoadError):
        load_image(trunc)
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image")
    with pytest.raises(ImageLoadError, match="cannot decode"):
        load_image(junk)
    with pytest.raises(ImageLoadError, match="no such"):
        load_image(tmp_path / "missing.png")


def test_load_image_decompression_bomb(monkeypatch):
    import mmrank.types as t

    monkeypatch.setattr(t, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageLoadError, match="decompression"):
        load_image(_png("RGB", size=(20, 20)))
    assert np.asarray(load_image(_png("RGB", size=(5, 5)))).shape == (5, 5, 3)


def test_load_image_applies_exif_orientation(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    p = tmp_path / "rotated.jpg"
    img.save(p, exif=exif.tobytes())
    assert load_image(p).size == (20, 40)


def test_text_fields_must_be_strings():
    """Issue 12 item 5: numeric or list text used to fail later with an AttributeError deep in a method."""

    with pytest.raises(DataFormatError, match="text must be a string"):
        Query("q", text=2019)  # type: ignore[arg-type]
    with pytest.raises(DataFormatError, match="title must be a string"):
        Item("d", text="x", title=["a"])  # type: ignore[arg-type]
    assert Query("q", text="2019").text == "2019"


def test_load_image_never_writes_pillows_global_truncation_flag(tmp_path):
    import io

    from PIL import Image, ImageFile

    from mmrank.errors import ImageLoadError
    from mmrank.types import load_image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, format="JPEG")
    good, cut = tmp_path / "good.jpg", tmp_path / "cut.jpg"
    good.write_bytes(buf.getvalue())
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        ImageFile.LOAD_TRUNCATED_IMAGES = True  # an application's own choice
        load_image(good)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # left as the application set it
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        with pytest.raises(ImageLoadError, match="cannot decode"):  # the default refuses truncated files
            load_image(cut)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
