"""``python -m recsys_core``: datasets, fetch, generate, train, evaluate, recommend, runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import RecsysError

PROTOCOL_CHOICES = ("loo-sampled", "loo-full", "heldout-users", "ratings")


def _print_table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def cmd_datasets(args: argparse.Namespace) -> int:
    from .datasets import list_datasets

    rows = list_datasets()
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    _print_table(
        [{"name": r["name"], "in home": "yes" if r["available"] else "no", "title": r["title"], "licence": r["licence"]} for r in rows],
        ["name", "in home", "title", "licence"],
    )
    from .home import datasets_dir

    print(f"\nData home: {datasets_dir()}  (set RECSYS_HOME to move it)")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from .datasets import fetch

    path = fetch(args.name, source=args.source, force=args.force, progress=True)
    print(f"{args.name} is ready in {path}")
    return 0


def _parse_sets(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise RecsysError(f"--set expects key=value, got {pair!r}", "For example: --set embedding_size=32")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from .datasets import UserFileOptions
    from .experiment import DataSource, run_experiment

    if args.csv:
        if not args.user_col or not args.item_col:
            raise RecsysError("--csv needs --user-col and --item-col", "Name the columns that hold the user and the item ids.")
        options = UserFileOptions(
            user_col=args.user_col,
            item_col=args.item_col,
            rating_col=args.rating_col,
            timestamp_col=args.timestamp_col,
            weight_col=args.weight_col,
            title_col=args.title_col,
            threshold=args.threshold,
            min_user_interactions=args.min_user_interactions,
            min_item_interactions=args.min_item_interactions,
        )
        source = DataSource.file(_import_user_file(args.csv), options, name=Path(args.csv).stem)
    else:
        source = DataSource.builtin(args.dataset)
    if args.distributed:
        return _train_distributed(args, source)
    data = source.load(download=True, progress=not args.json)
    result = run_experiment(
        data,
        args.model,
        protocol=args.protocol,
        seed=args.seed,
        device=args.device,
        overrides=_parse_sets(args.set),
        epochs=args.epochs,
        refit=args.refit,
        progress=not args.json,
        source=source,
        loo_order=args.loo_order,
    )
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"run {result.run_id}: {args.model} on {data.name}, {args.protocol}, {summary['epochs_run']} epochs, {summary['fit_seconds']:.1f} s")
        print(result.test.summary())
    return 0


def _train_distributed(args: argparse.Namespace, source) -> int:
    """One rank of ``torchrun ... -m recsys_core train --distributed``: every rank trains its shard,
    rank 0 saves the run and prints (see :mod:`recsys_core.distributed`)."""
    from . import distributed
    from .experiment import run_experiment

    context = distributed.init_from_environment(args.device)
    try:
        data = source.load(download=context.is_main, progress=False)
        result = run_experiment(
            data,
            args.model,
            protocol=args.protocol,
            seed=args.seed,
            device=distributed.device_for_rank(args.device),
            overrides=_parse_sets(args.set),
            epochs=args.epochs,
            refit=args.refit,
            progress=False,
            save=context.is_main,
            source=source,
            loo_order=args.loo_order,
        )
        result.record["distributed"] = {"world_size": context.world_size, "backend": context.backend}
        if context.is_main:
            summary = {**result.summary(), "world_size": context.world_size, "backend": context.backend}
            if result.run_id is not None:  # record how it was trained beside everything else in run.json
                from .runs import run_path

                path = run_path(result.run_id) / "run.json"
                record = json.loads(path.read_text())
                record["distributed"] = result.record["distributed"]
                partial = path.with_suffix(".json.partial")
                partial.write_text(json.dumps(record, indent=2, default=str))
                partial.replace(path)
            if args.json:
                print(json.dumps(summary))
            else:
                print(f"run {result.run_id}: {args.model} on {data.name}, {context.world_size} ranks ({context.backend}), {summary['epochs_run']} epochs")
                print(result.test.summary())
        return 0
    finally:
        distributed.shutdown()


def _import_user_file(path: str) -> str:
    """Copy a user's file into the data home so its runs can be evaluated again later."""
    import hashlib
    import shutil

    from .home import uploads_dir

    src = Path(path).expanduser()
    if not src.is_file():
        raise RecsysError(f"no file at {path!r}", "Check the path to your interaction file.")
    with src.open("rb") as handle:  # streamed in blocks: a 20M-row file is never held in memory
        digest = hashlib.file_digest(handle, "sha256").hexdigest()[:12]
    target = uploads_dir() / f"{src.stem}-{digest}{src.suffix}"
    if not target.exists():
        # A copy, not a link: editing the original in place must not change what a saved run was trained on.
        shutil.copyfile(src, target)
    return str(target)


def cmd_generate(args: argparse.Namespace) -> int:
    import time

    from .datasets.synthetic import SyntheticConfig, generate_synthetic, write_synthetic

    config = SyntheticConfig(
        n_users=args.users, n_items=args.items, n_interactions=args.interactions, n_groups=args.groups, seed=args.seed
    )
    started = time.perf_counter()
    paths = write_synthetic(generate_synthetic(config), args.out)
    print(f"{args.interactions:,} interactions of {args.users:,} users and {args.items:,} items written to {paths[0]} in {time.perf_counter() - started:.1f} s")
    print(f"hidden groups: {paths[1]}, {paths[2]}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .experiment import evaluate_run

    result = evaluate_run(args.run, protocol=args.protocol)
    if args.json:
        print(json.dumps({"run_id": args.run, "protocol": result.protocol, "metrics": result.metrics, "intervals": result.intervals}))
    else:
        print(f"run {args.run}, {result.protocol}, test split, {len(result.users)} users")
        print(result.summary())
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from .runs import load_run

    run = load_run(args.run)
    if args.reverse or args.item is not None:
        if args.item is None:
            raise RecsysError("--reverse needs --item", 'For example: --reverse --item "Humira"')
        table = run.rank_users_for_item(args.item, k=args.k)
        kind = run.users.kind
    else:
        if args.user is None:
            raise RecsysError("recommend needs --user (or --reverse --item)", f"Name a {run.users.kind} of run {args.run}.")
        table = run.recommend(args.user, k=args.k, exclude_seen=not args.include_seen)
        kind = run.items.kind
    if args.json:
        print(json.dumps(json.loads(table.to_json(orient="records", default_handler=str))))
        return 0
    columns = [c for c in table.columns if c not in ("item_index",)]
    _print_table([{c: _fmt(v) for c, v in row.items()} for row in table[columns].to_dict("records")], columns)
    if kind in ("drug", "condition"):
        print("\nThis ranks drugs by patterns in patient reviews. It is not medical advice.")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from .runs import list_runs

    runs = list_runs()
    if args.json:
        print(json.dumps(runs, default=str))
        return 0
    if not runs:
        print("No runs yet. Train one: python -m recsys_core train --dataset ml-100k --model ease")
        return 0
    rows = []
    for r in runs:
        if r.get("broken"):
            rows.append({"run_id": r["run_id"], "model": "(unreadable)"})
            continue
        metrics = r.get("metrics", {})
        head = r.get("headline", "HR@10")
        rows.append(
            {
                "run_id": r["run_id"],
                "dataset": r["dataset"]["name"],
                "model": r["model"],
                "protocol": r["protocol"],
                head: _fmt(metrics.get(head, "")),
                "NDCG@10": _fmt(metrics.get("NDCG@10", "")) if "NDCG@10" in metrics else "",
                "fit s": f"{r.get('fit_seconds', 0):.1f}",
            }
        )
    columns = list(dict.fromkeys(k for row in rows for k in row))
    _print_table(rows, columns)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .models import MODEL_NAMES

    parser = argparse.ArgumentParser(prog="python -m recsys_core", description="Recsys Explorer: neural recommenders with leak-free evaluation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("datasets", help="list the built-in datasets and whether each is in the data home")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("fetch", help="download a built-in dataset into the data home (or import files you have)")
    p.add_argument("name", help="dataset name, e.g. ml-100k (see `datasets`)")
    p.add_argument("--source", help="a file, folder or zip you already have, imported instead of downloading")
    p.add_argument("--force", action="store_true", help="fetch again even if the data is there")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("train", help="train a model, evaluate it once on the test split and save the run")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--dataset", default="ml-100k", help="built-in dataset (default ml-100k)")
    data.add_argument("--csv", help="your own interaction file (CSV, TSV or parquet)")
    p.add_argument("--model", required=True, choices=MODEL_NAMES, help="model to train")
    p.add_argument("--epochs", type=int, help="maximum epochs (default: the model's own)")
    p.add_argument("--seed", type=int, default=0, help="random seed for split, sampling and training (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--protocol", default="loo-sampled", choices=PROTOCOL_CHOICES, help="evaluation protocol (default loo-sampled)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a model setting; repeatable")
    p.add_argument("--refit", action="store_true", help="refit the chosen configuration on train + validation before testing")
    p.add_argument(
        "--loo-order", default="time", choices=("time", "random"),
        help="leave-one-out: hold out each user's latest items (time, default) or seeded random ones (random)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument(
        "--distributed", action="store_true",
        help="data-parallel training under torchrun (gloo on CPU, nccl on GPU); rank 0 saves and prints",
    )
    p.add_argument("--user-col", help="--csv: column with user ids")
    p.add_argument("--item-col", help="--csv: column with item ids")
    p.add_argument("--rating-col", help="--csv: column with ratings")
    p.add_argument("--timestamp-col", help="--csv: column with times (unix seconds or dates)")
    p.add_argument("--weight-col", help="--csv: column with interaction weights")
    p.add_argument("--title-col", help="--csv: column with item titles")
    p.add_argument("--threshold", type=float, help="--csv: keep ratings >= this as positive feedback")
    p.add_argument("--min-user-interactions", type=int, default=0, help="--csv: k-core filter, minimum per user")
    p.add_argument("--min-item-interactions", type=int, default=0, help="--csv: k-core filter, minimum per item")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="write a synthetic MovieLens-shaped data set with hidden taste groups (parquet)")
    p.add_argument("--users", type=int, default=138_493, help="number of users (default: ML-20M's 138,493)")
    p.add_argument("--items", type=int, default=26_744, help="number of items (default: ML-20M's 26,744)")
    p.add_argument("--interactions", type=int, default=20_000_263, help="number of distinct (user, item) rows (default: ML-20M's)")
    p.add_argument("--groups", type=int, default=20, help="hidden taste groups (default 20)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output file NAME.parquet; the groups go to NAME.user_groups.parquet and NAME.item_groups.parquet")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("evaluate", help="evaluate a saved run again on its test split")
    p.add_argument("--run", required=True, help="run id (see `runs`)")
    p.add_argument("--protocol", choices=PROTOCOL_CHOICES, help="protocol (default: the run's own)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="top items for a user of a saved run (or users for an item with --reverse)")
    p.add_argument("--run", required=True, help="run id (see `runs`)")
    p.add_argument("--user", help='raw user id; on drug data a condition, e.g. "Rheumatoid Arthritis"')
    p.add_argument("--item", help='raw item id for --reverse, e.g. "Humira"')
    p.add_argument("--reverse", action="store_true", help="rank users (conditions) for --item")
    p.add_argument("--k", type=int, default=10, help="how many (default 10)")
    p.add_argument("--include-seen", action="store_true", help="also show items the user already has")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("runs", help="list saved runs with their headline metrics")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_runs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RecsysError as error:
        print(f"error: {error.message}", file=sys.stderr)
        if error.hint:
            print(error.hint, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
