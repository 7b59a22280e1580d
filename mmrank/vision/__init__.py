"""Image search end to end: index a folder (with an embedding cache), search by text or image, contact sheets,
benchmark a labelled folder, and the image demo."""

from mmrank.vision.bench import DEFAULT_CONFIGS, bench_labelled_folder, read_labels
from mmrank.vision.demo import run_image_demo
from mmrank.vision.index import IndexReport, encoder_from_spec, encoder_spec, index_folder
from mmrank.vision.search import ImageSearch, search
from mmrank.vision.sheet import contact_sheet

__all__ = [
    "DEFAULT_CONFIGS",
    "ImageSearch",
    "IndexReport",
    "bench_labelled_folder",
    "contact_sheet",
    "encoder_from_spec",
    "encoder_spec",
    "index_folder",
    "read_labels",
    "run_image_demo",
    "search",
]
