"""LoRA training of a yes/no reranker with the SFT or the contrastive objective (arXiv 2510.14824).

The model reads exactly the prompt the rerankers score with: the text ``yes-no`` reranker's chat prompt
(:class:`~mmrank.rerank.pointwise.YesNoReranker`) for a causal LM, the ``vlm-yes-no`` judge conversation
(:class:`~mmrank.rerank.vlm_pointwise.VLMYesNoReranker`) for a VLM; logits come from the backends' own
last-position path (:meth:`CausalLM.last_logits_ids`, :meth:`VLM.last_logits`) with LoRA layers injected in place
by ``peft``, so training and inference cannot drift apart.

One step sees ``batch_size`` groups (query, 1 positive, ``negatives`` negatives) per micro-batch and accumulates
``grad_accum`` micro-batches. SFT labels the positive ``yes`` and the negatives ``no`` (mean per-pair cross-entropy);
contrastive takes InfoNCE over each group (mean over groups). Data order: epoch ``e`` shuffles the examples and
samples each group's positive and negatives with ``numpy.random.default_rng([seed, e])``, independent of progress,
so a resumed run sees the same groups as an uninterrupted one.

Output folder ``out``::

    adapter_config.json, adapter_model.safetensors   # final LoRA adapter: `mmrank rerank --model out`
    mmrank_train.json                                  # config, per-step losses, skipped micro-batches, timing
    checkpoints/step-NNNNNN/                           # adapter + optimizer.safetensors + state.json
    trainer_state.json                                 # names the latest checkpoint (atomic commit point)

Checkpoints are written into a temporary folder and renamed; ``trainer_state.json`` is replaced atomically after;
nothing is pickled (tensors in safetensors, the rest JSON). ``resume=True`` continues from the latest checkpoint
(adapter weights, optimizer moments, torch RNG, step). A micro-batch whose loss is not finite is skipped (no
update) and recorded with its query ids in ``mmrank_train.json``; the run never crashes on it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mmrank.errors import DataFormatError, MissingDependencyError, OptionError
from mmrank.index.store import atomic_write_bytes, fsync_dir
from mmrank.train.data import TrainExample
from mmrank.train.objectives import DEFAULT_TEMPERATURE, contrastive_loss, sft_loss
from mmrank.types import Item, Query

OBJECTIVES = ("sft", "contrastive")
STATE = "trainer_state.json"
SUMMARY = "mmrank_train.json"


@dataclass
class TrainConfig:
    """Training parameters (paper defaults where it gives them: LoRA r 16, lr 1e-4, 16 negatives).

    Args:
        objective: ``"sft"`` or ``"contrastive"``.
        negatives: negatives per group (paper: 16); fewer are used when an example has fewer.
        temperature: InfoNCE temperature on ``z_yes`` (default 1.0: the raw yes logit, as the CL head scores) [gap].
        lora_r, lora_alpha, lora_dropout, target_modules: the LoRA adapter (peft ``LoraConfig``).
        batch_size: groups per micro-batch; grad_accum: micro-batches per optimizer step.
        max_steps: stop after this many optimizer steps (``None``: all epochs).
        save_every: checkpoint every this many steps (and at the end); keep_checkpoints: how many to keep.
        max_doc_tokens: candidate text cut to this many tokens (as the rerankers do).
        backend: ``"auto"`` (a VLM when the config has a vision part), ``"text"`` or ``"vlm"``.
    """

    objective: Literal["sft", "contrastive"] = "sft"
    negatives: int = 16
    temperature: float = DEFAULT_TEMPERATURE
    epochs: int = 1
    max_steps: int | None = None
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 1
    grad_accum: int = 1
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    seed: int = 0
    save_every: int = 50
    keep_checkpoints: int = 2
    max_doc_tokens: int | None = 256
    max_length: int = 4096
    instruction: str | None = None
    backend: Literal["auto", "text", "vlm"] = "auto"
    device: str | None = None
    dtype: str = "auto"
    progress: bool = True

    def check(self) -> None:
        if self.objective not in OBJECTIVES:
            raise OptionError(f"objective must be 'sft' or 'contrastive', got {self.objective!r}")
        for name in ("negatives", "epochs", "batch_size", "grad_accum", "lora_r", "save_every", "keep_checkpoints"):
            if int(getattr(self, name)) < 1:
                raise OptionError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.temperature <= 0 or self.lr <= 0:
            raise OptionError("temperature and lr must be > 0")
        if not 0 <= self.lora_dropout < 1:
            raise OptionError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.backend not in ("auto", "text", "vlm"):
            raise OptionError(f"backend must be 'auto', 'text' or 'vlm', got {self.backend!r}")


# ---------------------------------------------------------------------------------------------- model side
class PairScorer:
    """Last-position logits of (query, item) pairs through a reranker's own prompt, with gradients."""

    def __init__(self, model: str, cfg: TrainConfig) -> None:
        from mmrank.llm.vlm import is_vlm

        vlm = cfg.backend == "vlm" or (cfg.backend == "auto" and is_vlm(model))
        self.kind = "vlm" if vlm else "text"
        kw: dict[str, Any] = {"device": cfg.device, "dtype": cfg.dtype, "max_length": cfg.max_length}
        if vlm:
            from mmrank.llm.vlm import VLM
            from mmrank.rerank.vlm_pointwise import VLMYesNoReranker

            self.lm: Any = VLM(model, batch_size=cfg.batch_size * (1 + cfg.negatives), **kw)
            self.reranker: Any = VLMYesNoReranker(
                lm=self.lm, instruction=cfg.instruction, max_doc_tokens=cfg.max_doc_tokens
            )
            self.hf = self.lm.hf_model
        else:
            from mmrank.llm.causal import CausalLM
            from mmrank.rerank.pointwise import YesNoReranker

            self.lm = CausalLM(model, batch_size=cfg.batch_size * (1 + cfg.negatives), **kw)
            self.reranker = YesNoReranker(lm=self.lm, instruction=cfg.instruction, max_doc_tokens=cfg.max_doc_tokens)
            self.hf = self.lm.model
        self.yes_id, self.no_id = self.reranker.yes_id, self.reranker.no_id

    def logits(self, pairs: Sequence[tuple[Query, Item]]) -> torch.Tensor:
        if self.kind == "text":
            seqs, _ = self.reranker.build(pairs)
            return self.lm.last_logits_ids(seqs)
        convs = []
        for q, it in pairs:
            qi = self.lm.prepare_image(q) if q.image is not None else None
            di = self.lm.prepare_image(it) if it.image is not None and self.reranker.document != "text" else None
            convs.append(self.reranker.conversation(q, it, query_image=qi, doc_image=di))
        return self.lm.last_logits(convs)


def add_lora(hf: Any, cfg: TrainConfig, base: str) -> Any:
    """Inject LoRA layers into ``hf`` in place; returns the ``PeftModel`` (for saving) with only LoRA trainable."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as e:  # pragma: no cover - peft is in the train extra
        raise MissingDependencyError("training needs peft: pip install 'mmrank[train]'") from e
    lcfg = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
    )
    peft_model = get_peft_model(hf, lcfg)
    peft_model.peft_config["default"].base_model_name_or_path = base
    return peft_model


# ---------------------------------------------------------------------------------------------- data plan
def epoch_groups(examples: Sequence[TrainExample], epoch: int, cfg: TrainConfig) -> list[tuple[int, int, list[int]]]:
    """``(example index, positive index, negative indices)`` for every group of ``epoch``, in training order."""
    rng = np.random.default_rng([cfg.seed, epoch])
    out = []
    for i in rng.permutation(len(examples)):
        ex = examples[int(i)]
        p = int(rng.integers(len(ex.positives)))
        k = min(cfg.negatives, len(ex.negatives))
        negs = [int(j) for j in rng.choice(len(ex.negatives), size=k, replace=False)]
        out.append((int(i), p, negs))
    return out


def group_loss(
    scorer: PairScorer, examples: Sequence[TrainExample], groups: Sequence[tuple[int, int, list[int]]], cfg: TrainConfig
) -> torch.Tensor:
    """The objective's loss over ``groups`` (one forward pass over all their pairs)."""
    pairs: list[tuple[Query, Item]] = []
    labels: list[int] = []
    sizes: list[int] = []
    for i, p, negs in groups:
        ex = examples[i]
        pairs.append((ex.query, ex.positives[p]))
        pairs += [(ex.query, ex.negatives[j]) for j in negs]
        labels += [1] + [0] * len(negs)
        sizes.append(1 + len(negs))
    z = scorer.logits(pairs)
    if cfg.objective == "sft":
        return sft_loss(z, torch.tensor(labels), yes_id=scorer.yes_id, no_id=scorer.no_id)
    losses, at = [], 0
    for n in sizes:
        losses.append(contrastive_loss(z[at : at + n][None], yes_id=scorer.yes_id, temperature=cfg.temperature))
        at += n
    return torch.stack(losses).mean()


# ---------------------------------------------------------------------------------------------- checkpoints
def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state as flat tensors (``"<param>.<key>"``) plus JSON-able param groups and scalars."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def write_checkpoint(
    out: Path, step: int, peft_model: Any, opt: torch.optim.Optimizer, state: dict[str, Any], keep: int
) -> Path:
    """Write ``checkpoints/step-N`` atomically (temp folder + rename), then point ``trainer_state.json`` at it."""
    ck_root = out / "checkpoints"
    ck_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    tmp = ck_root / f".{name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    try:
        peft_model.save_pretrained(str(tmp), safe_serialization=True)
        tensors, meta = optimizer_tensors(opt)
        tensors["rng.torch"] = torch.get_rng_state()
        _save_tensors(tmp / "optimizer.safetensors", tensors)
        (tmp / "state.json").write_text(json.dumps({**state, "optimizer": meta}, indent=1), encoding="utf-8")
        for f in tmp.iterdir():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        final = ck_root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(ck_root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_bytes(out / STATE, json.dumps({"latest": f"checkpoints/{name}", "step": step}).encode())
    done = sorted(p for p in ck_root.iterdir() if p.name.startswith("step-"))
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint(out: Path) -> Path | None:
    """The latest committed checkpoint folder of ``out`` (``None`` when there is none)."""
    p = out / STATE
    if not p.is_file():
        return None
    latest = json.loads(p.read_text(encoding="utf-8"))["latest"]
    ck = (out / latest).resolve()
    if out.resolve() not in ck.parents or not (ck / "state.json").is_file():
        raise DataFormatError(f"{p}: names a missing or foreign checkpoint {latest!r}")
    return ck


def _save_adapter(out: Path, peft_model: Any) -> None:
    """The final adapter into ``out`` itself (each file replaced atomically)."""
    tmp = out / f".adapter.{uuid.uuid4().hex}.tmp"
    peft_model.save_pretrained(str(tmp), safe_serialization=True)
    for f in sorted(tmp.iterdir(), key=lambda f: f.name == "adapter_config.json"):  # config last: the commit
        os.replace(f, out / f.name)
    tmp.rmdir()
    fsync_dir(out)


# ---------------------------------------------------------------------------------------------- loop
def _base_name(model: str) -> str:
    p = Path(model).expanduser()
    return str(p.resolve()) if p.exists() else model


def train(
    model: str,
    examples: Sequence[TrainExample],
    out: str | Path,
    cfg: TrainConfig | None = None,
    *,
    resume: bool = False,
) -> dict[str, Any]:
    """Train a LoRA adapter on ``examples`` and save it in ``out`` (see the module docstring); returns the summary
    (``steps``, ``losses`` per optimizer step, ``skipped``, ``seconds``, ``out``)."""
    cfg = cfg or TrainConfig()
    cfg.check()
    if not examples:
        raise DataFormatError("no training examples")
    for ex in examples:
        if not ex.positives or not ex.negatives:
            raise DataFormatError(f"query {ex.query.id!r}: needs at least one positive and one negative")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    scorer = PairScorer(model, cfg)
    peft_model = add_lora(scorer.hf, cfg, _base_name(model))
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    n_micro = math.ceil(len(examples) / cfg.batch_size)
    per_epoch = math.ceil(n_micro / cfg.grad_accum)
    total = per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, per_epoch * cfg.epochs)
    step, losses, skipped, seconds = 0, [], [], 0.0
    ck = read_checkpoint(out) if resume else None
    if ck is not None:
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(peft_model, load_file(str(ck / "adapter_model.safetensors")))
        st = json.loads((ck / "state.json").read_text(encoding="utf-8"))
        tensors = load_file(str(ck / "optimizer.safetensors"))
        torch.set_rng_state(tensors.pop("rng.torch"))
        load_optimizer(opt, tensors, st["optimizer"])
        step, losses, skipped, seconds = st["step"], st["losses"], st["skipped"], st["seconds"]

    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=step, desc=f"train {cfg.objective}", unit="step")
    peft_model.train()
    t0 = time.perf_counter() - seconds
    plan: list[tuple[int, int, list[int]]] = []
    plan_epoch = -1
    try:
        while step < total:
            epoch, in_epoch = divmod(step, per_epoch)
            if epoch != plan_epoch:
                plan, plan_epoch = epoch_groups(examples, epoch, cfg), epoch
            opt.zero_grad(set_to_none=True)
            parts: list[float] = []
            first = in_epoch * cfg.grad_accum
            micro = range(first, min(first + cfg.grad_accum, n_micro))
            for m in micro:
                groups = plan[m * cfg.batch_size : (m + 1) * cfg.batch_size]
                loss = group_loss(scorer, examples, groups, cfg)
                if not torch.isfinite(loss):
                    skipped.append({"step": step + 1, "queries": [examples[g[0]].query.id for g in groups]})
                    continue
                (loss / len(micro)).backward()
                parts.append(float(loss.detach()))
            opt.step()
            step += 1
            losses.append(float(np.mean(parts)) if parts else float("nan"))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if step % cfg.save_every == 0 or step == total:
                state = {"step": step, "losses": losses, "skipped": skipped, "seconds": time.perf_counter() - t0}
                write_checkpoint(out, step, peft_model, opt, state, cfg.keep_checkpoints)
    finally:
        if bar is not None:
            bar.close()
    peft_model.eval()
    _save_adapter(out, peft_model)
    summary = {
        "out": str(out),
        "model": _base_name(model),
        "backend": scorer.kind,
        "steps": step,
        "losses": losses,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 3),
        "config": asdict(cfg),
    }
    atomic_write_bytes(out / SUMMARY, json.dumps(summary, indent=1).encode())
    return summary
