import pytest
import torch

from mmrank.encoders.images import collate_images, image_batches, list_image_files
from mmrank.errors import ImageLoadError
from tests.tiny_vision import BAD_ODD, GOOD_ODD, write_odd_images


def _to_tensor(img):
    return torch.from_numpy(__import__("numpy").asarray(img.resize((8, 8)), dtype="float32")).permute(2, 0, 1)


def test_list_image_files_records_non_images(tmp_path):
    odd = write_odd_images(tmp_path / "f")
    (tmp_path / "f" / ".hidden.jpg").write_bytes(b"x")
    files, warnings = list_image_files(tmp_path / "f")
    assert {p.name for p in files} == {odd[n].name for n in GOOD_ODD + BAD_ODD}
    assert len(warnings) == 1 and "notes.txt" in warnings[0]
    with pytest.raises(ImageLoadError):
        list_image_files(tmp_path / "missing")


@pytest.mark.parametrize("workers", [0, 1])
def test_batches_never_crash(tmp_path, workers):
    odd = write_odd_images(tmp_path / "f")
    srcs = [odd[n] for n in BAD_ODD + GOOD_ODD]
    batches = list(image_batches(srcs, _to_tensor, batch_size=3, num_workers=workers))
    good = [i for b in batches for i in b.indices]
    failed = [i for b in batches for i, _ in b.failed]
    assert good == list(range(len(BAD_ODD), len(srcs)))
    assert failed == list(range(len(BAD_ODD)))
    assert all(b.pixels is None or b.pixels.shape[1:] == (3, 8, 8) for b in batches)


def test_collate_all_failed():
    b = collate_images([(0, None, "boom")])
    assert b.pixels is None and b.failed == [(0, "boom")]
