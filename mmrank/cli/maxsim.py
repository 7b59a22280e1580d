"""Late-interaction options of ``mmrank index`` / ``mmrank search``.

``mmrank index FOLDER --encoder colqwen2|colpali --model M --out IDX [--pool-factor N]`` builds a MaxSim page
index; ``mmrank search IDX --text "..." [--approximate]`` searches it. :func:`add_parsers` extends the ``index`` and
``search`` parsers the vision CLI registered and routes these cases here; everything else goes to the vision CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mmrank.cli.common import json_safe, positive_int
from mmrank.errors import OptionError

FAMILIES = ("colqwen2", "colpali")


def _is_mine(args: argparse.Namespace) -> bool:
    return str(getattr(args, "encoder", "")).lower() in FAMILIES


def cmd_index(args: argparse.Namespace) -> int:
    from mmrank.retrieve.maxsim import index_folder

    report = index_folder(
        args.folder,
        args.out,
        encoder=args.encoder.lower(),
        model=args.model,
        pool_factor=args.pool_factor,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        device=args.device,
    )
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        payload = {"out": str(report.out_dir), "indexed": report.n_indexed, "skipped": report.warnings}
        print(json.dumps(payload | {"bytes_per_page": report.bytes_per_page}))
    else:
        print(report.summary())
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from mmrank.collection import open_index

    if not args.text or args.image:
        raise OptionError("a late-interaction index takes a text query: --text '...'")
    if args.rerank:
        raise OptionError("--rerank (SuperGlobal) applies to image-folder indexes, not to a MaxSim index")
    options: dict[str, Any] = {"approximate": args.approximate}
    if args.token_k:
        options["token_k"] = args.token_k
    if args.max_candidates:
        options["max_candidates"] = args.max_candidates
    coll = open_index(args.index_dir, device=args.device, model=args.model, **options)
    ranking = coll.search(args.text, args.k)
    if args.json:
        payload = {"query": args.text, "hits": [{"id": h.id, "score": h.score} for h in ranking]}
        print(json.dumps(json_safe(payload), allow_nan=False))
    else:
        for r, h in enumerate(ranking, 1):
            print(f"{r:3d}  {h.score:.4f}  {h.id}")
    return 0


def add_parsers(subparsers: Any) -> None:
    """Add the late-interaction options to the existing ``index`` / ``search`` parsers and route to them."""
    from mmrank.retrieve.maxsim import MARKER

    index = subparsers.choices["index"]
    index.add_argument(
        "--pool-factor", type=positive_int, help="colqwen2/colpali: hierarchical token pooling factor (2409.14683)"
    )
    vision_index = index.get_default("func")

    def route_index(args: argparse.Namespace) -> int:
        return cmd_index(args) if _is_mine(args) else int(vision_index(args))

    index.set_defaults(func=route_index)

    search = subparsers.choices["search"]
    search.add_argument("--approximate", action="store_true", help="MaxSim index: faiss token candidates, then exact")
    search.add_argument("--token-k", type=positive_int, help="MaxSim index: nearest tokens per query token")
    search.add_argument(
        "--max-candidates", type=positive_int, help="MaxSim index: pages scored exactly (default max(128, 4k))"
    )
    if not any("--model" in a.option_strings for a in search._actions):
        search.add_argument("--model", help="MaxSim index: local folder holding the index's encoder weights")
    vision_search = search.get_default("func")

    def route_search(args: argparse.Namespace) -> int:
        if (Path(args.index_dir) / MARKER).is_file():
            return cmd_search(args)
        return int(vision_search(args))

    search.set_defaults(func=route_search)
