"""Registry entries as data. Each area keeps its own block; targets are imported only on use.

This module imports nothing from ``mmrank``: :mod:`mmrank.registry` reads it, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    """One registered method: ``kind`` and ``name`` (plus ``aliases``) -> ``target`` ``"package.module:attribute"``."""

    kind: str
    name: str
    target: str  # "package.module:attribute"
    extra: str | None = None  # pip extra providing its optional dependencies
    summary: str = ""
    aliases: tuple[str, ...] = ()


# --- foundation: retrieval, encoders, indexes, the bi-encoder reranker ---------------------------
FOUNDATION = [
    Entry("retriever", "bm25", "mmrank.retrieve.bm25:BM25Retriever", summary="BM25 via bm25s (Robertson et al.)"),
    Entry("retriever", "dense", "mmrank.retrieve.dense:DenseRetriever", summary="any encoder + vector index"),
    Entry("retriever", "hybrid", "mmrank.retrieve.hybrid:HybridRetriever", summary="RRF / weighted fusion"),
    Entry(
        "encoder",
        "sentence-transformers",
        "mmrank.encoders.text:SentenceTransformerEncoder",
        aliases=("st", "minilm", "text"),
        summary="sentence-transformers model by hub id or path",
    ),
    Entry("encoder", "hf-text", "mmrank.encoders.text:HFTextEncoder", summary="transformers AutoModel + pooling"),
    Entry("index", "exact", "mmrank.index.exact:ExactIndex", aliases=("torch", "flat-torch")),
    Entry("index", "faiss-flat", "mmrank.index.faiss_index:FaissFlatIndex", aliases=("faiss",)),
    Entry("index", "faiss-ivf", "mmrank.index.faiss_index:FaissIVFIndex"),
    Entry("index", "faiss-hnsw", "mmrank.index.faiss_index:FaissHNSWIndex"),
    Entry(
        "reranker",
        "bi-encoder",
        "mmrank.rerank.biencoder:BiEncoderReranker",
        aliases=("dense", "biencoder"),
        summary="cosine of query and item embeddings",
    ),
]

# --- vision (issue 3) -------------------------------------------------------------------------
VISION: list[Entry] = [
    Entry(
        "encoder",
        "open-clip",
        "mmrank.encoders.clip:OpenCLIPEncoder",
        aliases=("openclip", "clip"),
        summary="open_clip model name + pretrained tag / checkpoint, or a saved folder (CLIP, arXiv 2103.00020)",
    ),
    Entry(
        "encoder",
        "hf-clip",
        "mmrank.encoders.clip:HFCLIPEncoder",
        aliases=("hf-siglip", "siglip", "transformers-clip"),
        summary="transformers CLIPModel / SiglipModel by hub id or local path",
    ),
    Entry(
        "encoder",
        "cnn",
        "mmrank.encoders.cnn:CNNEncoder",
        aliases=("gem", "cnn-gem"),
        summary="CNN backbone last feature map + avg / max / GeM pooling (arXiv 1711.02512)",
    ),
    Entry(
        "encoder",
        "superglobal",
        "mmrank.encoders.cnn:superglobal_encoder",
        aliases=("supg", "superglobal-cnn"),
        summary="SuperGlobal descriptor: ReLU+, regional-GeM, GeM+, scale-GeM (arXiv 2308.06954)",
    ),
    Entry(
        "reranker",
        "superglobal-rerank",
        "mmrank.globalfeat.rerank:SuperGlobalReranker",
        aliases=("superglobal", "mdescaug", "supg-rerank"),
        summary="SuperGlobal reranking by top-M feature refinement, M=400 K=9 beta=0.15 (arXiv 2308.06954)",
    ),
]

# --- text rerankers (issue 4) -----------------------------------------------------------------
TEXT_RERANKERS: list[Entry] = [
    # pointwise, attention and embedding rerankers (issue 4, scoring half)
    Entry(
        "reranker",
        "cross-encoder",
        "mmrank.rerank.crossencoder:CrossEncoderReranker",
        aliases=("crossencoder", "ce"),
        summary="sequence-classification cross-encoder (arXiv 1901.04085)",
    ),
    Entry("reranker", "monot5", "mmrank.rerank.monot5:MonoT5Reranker", summary="monoT5 true/false (arXiv 2003.06713)"),
    Entry(
        "reranker",
        "yes-no",
        "mmrank.rerank.pointwise:YesNoReranker",
        aliases=("yesno", "pointwise", "gmr"),
        summary="LLM yes/no judge, SFT or contrastive head (arXiv 2510.14824)",
    ),
    Entry(
        "reranker",
        "prorank",
        "mmrank.rerank.pointwise:ProRankReranker",
        aliases=("mxbai-rerank",),
        summary='ProRank logit("1") - logit("0") (arXiv 2506.03487)',
    ),
    Entry("reranker", "erank", "mmrank.rerank.erank:ERankReranker", summary="ERank 0-10, s x P(s) (arXiv 2509.00520)"),
    Entry(
        "reranker",
        "query-likelihood",
        "mmrank.rerank.pointwise:QueryLikelihoodReranker",
        aliases=("upr", "ql"),
        summary="UPR query likelihood log p(q | d) (arXiv 2204.07496)",
    ),
    Entry(
        "reranker",
        "icr",
        "mmrank.rerank.icr:ICRReranker",
        aliases=("in-context",),
        summary="in-context reranking from attention, N/A calibration (arXiv 2410.02642)",
    ),
    Entry(
        "reranker",
        "e2rank",
        "mmrank.rerank.e2rank:E2RankReranker",
        summary="embedding listwise reranking with a pseudo-query (arXiv 2510.22733)",
    ),
    Entry(
        "reranker",
        "fusion",
        "mmrank.rerank.rankfusion:RankFusionReranker",
        aliases=("rank-fusion",),
        summary="RRF / weighted fusion of several rerankers",
    ),
    # generative: listwise / setwise / groupwise (issue 4, generative half)
    Entry(
        "reranker",
        "rankgpt",
        "mmrank.rerank.listwise:ListwiseReranker",
        aliases=("listwise", "sliding-window"),
        summary="RankGPT sliding-window permutation generation (arXiv 2304.09542)",
    ),
    Entry(
        "reranker",
        "reasonrank",
        "mmrank.rerank.listwise:ReasonRankReranker",
        summary="ReasonRank reasoning listwise, think/answer (arXiv 2508.07050)",
    ),
    Entry(
        "reranker",
        "rank-r1",
        "mmrank.rerank.setwise:SetwiseReranker",
        aliases=("setwise",),
        summary="Rank-R1 setwise heapsort top-k (arXiv 2503.06034)",
    ),
    Entry(
        "reranker",
        "grouprank",
        "mmrank.rerank.grouprank:GroupRankReranker",
        aliases=("groupwise",),
        summary="GroupRank groupwise JSON 0-10 scores, averaged shuffles (arXiv 2511.11653)",
    ),
]

# --- multimodal LLM rerankers (issue 7) ---------------------------------------------------------
MULTIMODAL_LLM_RERANKERS: list[Entry] = [
    Entry(
        "reranker",
        "mm-r5",
        "mmrank.rerank.mm_r5:MMR5Reranker",
        aliases=("mmr5",),
        summary="MM-R5 reasoning listwise reranking of page images, think/answer (arXiv 2506.12364)",
    ),
    Entry(
        "reranker",
        "vlm-yes-no",
        "mmrank.rerank.vlm_pointwise:VLMYesNoReranker",
        aliases=("vlm-yesno", "vlm-pointwise", "gmr-vl", "lychee-rerank-mm"),
        summary="VLM yes/no judge over text and/or images, SFT p(yes) or contrastive z_yes head (arXiv 2510.14824)",
    ),
]

# --- composed image retrieval (issue 8) -------------------------------------------------------
CIR: list[Entry] = [
    Entry(
        "retriever",
        "cir-image",
        "mmrank.cir.retrieve:image_only",
        summary="composed query baseline: the reference image's CLIP embedding alone",
    ),
    Entry(
        "retriever",
        "cir-text",
        "mmrank.cir.retrieve:text_only",
        summary="composed query baseline: the modification text's CLIP embedding alone",
    ),
    Entry(
        "retriever",
        "cir-sum",
        "mmrank.cir.retrieve:weighted_sum",
        aliases=("image+text", "composed-sum", "weighted-sum"),
        summary="normalize((1-alpha) E_img + alpha E_txt), alpha=0.65 (WeiMoCIR arXiv 2409.04918)",
    ),
    Entry(
        "retriever",
        "cir-caption",
        "mmrank.cir.retrieve:caption_search",
        aliases=("caption-search",),
        summary="a VLM captions the target; CLIP text embedding of the caption searches",
    ),
    Entry(
        "retriever",
        "sqaf",
        "mmrank.cir.retrieve:sqaf",
        aliases=("square-sqaf",),
        summary="SQUARE SQAF: composed query fused with a VLM target caption, beta=0.65 (arXiv 2509.26330)",
    ),
    Entry(
        "reranker",
        "ebr",
        "mmrank.cir.ebr:EBRReranker",
        aliases=("square-ebr", "grid-rerank"),
        summary="SQUARE EBR: top-K in one marked grid, VLM ranks all in a single pass (arXiv 2509.26330)",
    ),
    Entry(
        "reranker",
        "cir-pointwise",
        "mmrank.cir.pointwise:PointwiseVLMReranker",
        aliases=("vlm-pointwise-cir",),
        summary="per-candidate VLM yes/no judge for composed queries (one call per candidate)",
    ),
]

# --- index families: the marker file at an index folder's root -> its opener (see mmrank.collection) ---
COLLECTIONS = [
    Entry("collection", "mmrank_vision.json", "mmrank.vision.search:ImageSearch", summary="image folder index"),
    Entry("collection", "mmrank_pages.json", "mmrank.docs.index:PageCollection", summary="PDF page index"),
]

# --- serve / scale-out (issue 9): the text-corpus index family ---------------------------------------
SERVE = [
    Entry("collection", "mmrank_text.json", "mmrank.retrieve.text_index:TextSearch", summary="text corpus index"),
]

# --- late-interaction page retrieval: ColPali / ColQwen2 + MaxSim (issue 10) --------------------------
LATE_INTERACTION: list[Entry] = [
    Entry(
        "retriever",
        "colqwen2",
        "mmrank.retrieve.maxsim:colqwen2_retriever",
        aliases=("colqwen",),
        summary="ColQwen2 multi-vector page retrieval, MaxSim (arXiv 2407.01449); vidore/colqwen2-v1.0-hf",
    ),
    Entry(
        "retriever",
        "colpali",
        "mmrank.retrieve.maxsim:colpali_retriever",
        summary="ColPali multi-vector page retrieval, MaxSim (arXiv 2407.01449); vidore/colpali-v1.3-hf",
    ),
    Entry(
        "retriever",
        "maxsim",
        "mmrank.retrieve.maxsim:MaxSimRetriever",
        aliases=("late-interaction", "multi-vector"),
        summary="any ColPali-family encoder + exact or faiss-candidate MaxSim (ColBERT arXiv 2004.12832)",
    ),
    Entry(
        "encoder",
        "colqwen2",
        "mmrank.encoders.multivector:ColQwen2Encoder",
        aliases=("colqwen2-multivector",),
        summary="ColQwen2 token matrices (multi-vector: for the maxsim retriever / index, not for dense)",
    ),
    Entry(
        "encoder",
        "colpali",
        "mmrank.encoders.multivector:ColPaliEncoder",
        aliases=("colpali-multivector",),
        summary="ColPali token matrices (multi-vector: for the maxsim retriever / index, not for dense)",
    ),
    Entry(
        "index",
        "maxsim",
        "mmrank.index.maxsim:MultiVectorIndex",
        summary="fp16 token matrices, exact MaxSim, faiss token candidates, token pooling (arXiv 2409.14683)",
    ),
    Entry(
        "collection", "mmrank_maxsim.json", "mmrank.retrieve.maxsim:MaxSimCollection", summary="page-image MaxSim index"
    ),
]

ENTRIES = FOUNDATION + VISION + TEXT_RERANKERS + MULTIMODAL_LLM_RERANKERS + CIR + COLLECTIONS + SERVE + LATE_INTERACTION
