"""``python -m recsys_core``: datasets, fetch, generate, train, evaluate, recommend, runs, tune, report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import RecsysError
from .protocols import DEFAULT_PROTOCOL, PROTOCOL_NAMES

#: ``--protocol`` choices: the registry's names (recsys_core.protocols).
PROTOCOL_CHOICES = PROTOCOL_NAMES


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
        print(_json_line(rows))
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _parse_sets(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise RecsysError(f"--set expects key=value, got {pair!r}", "For example: --set embedding_size=32")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


def _threshold(text: str) -> float | str | None:
    """``--threshold``: a number, or "none" for no positive rule."""
    if text.strip().lower() in ("none", "off", "all"):
        return None
    if text == "default":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (or 'none')") from None


def cmd_train(args: argparse.Namespace) -> int:
    from .datasets import UserFileOptions
    from .datasets.source import DEFAULT_THRESHOLD, DataSource
    from .experiment import run_experiment
    from .limits import check_setting
    from .models.base import TrainingConfig

    if args.epochs is not None:  # every model's epoch budget has the range of the gradient models' epochs
        check_setting("epochs", args.epochs, TrainingConfig)

    if args.csv:
        if args.threshold == "default":
            args.threshold = None
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
            duplicates=args.duplicates,
            min_user_interactions=args.min_user_interactions,
            min_item_interactions=args.min_item_interactions,
            drop_blank_ratings=args.drop_blank_ratings,
        )
        source, data = _import_user_file(args.csv, options, args.protocol)
    else:
        source = DataSource.builtin(args.dataset, threshold=DEFAULT_THRESHOLD if args.threshold == "default" else args.threshold)
    if args.distributed:
        return _train_distributed(args, source)
    if not args.csv:
        data = source.load(download=True, progress=not args.json)
    result = run_experiment(data, args.model, device=args.device, progress=not args.json, source=source, **_experiment_settings(args))
    summary = result.summary()
    if args.json:
        print(_json_line(summary))
    else:
        print(
            f"run {result.run_id}: {args.model} on {data.name}, {args.protocol}, {summary['epochs_run']} epochs, {summary['fit_seconds']:.1f} s"
        )
        print(f"positive rule: {source.positive_rule()}")
        print(result.test.summary())
        if result.test.meaning_note:
            print(f"note: {result.test.meaning_note}")
    return 0


def _experiment_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``run_experiment`` settings that ``train`` reads from its flags, alike on one process and on every rank."""
    return {
        "protocol": args.protocol,
        "seed": args.seed,
        "overrides": _parse_sets(args.set),
        "epochs": args.epochs,
        "refit": args.refit,
        "loo_order": args.loo_order,
        "compile_network": args.compile,
        "threads": args.threads,
    }


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
            device=distributed.device_for_rank(args.device),
            progress=False,
            save=context.is_main,
            source=source,
            **_experiment_settings(args),
        )
        if context.is_main:
            summary = {**result.summary(), "world_size": context.world_size, "backend": context.backend}
            if result.run_id is not None:  # record how it was trained beside everything else in run.json
                from .runs import update_run

                update_run(result.run_id, distributed={"world_size": context.world_size, "backend": context.backend})
            if args.json:
                print(_json_line(summary))
            else:
                print(
                    f"run {result.run_id}: {args.model} on {data.name}, {context.world_size} ranks ({context.backend}), {summary['epochs_run']} epochs"
                )
                print(result.test.summary())
        return 0
    finally:
        distributed.shutdown()


def _json_line(value: Any) -> str:
    """One line of strict JSON: NaN and infinities (never valid JSON) become null."""
    import math

    def clean(item: Any) -> Any:
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {str(k): clean(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        return item

    return json.dumps(clean(json.loads(json.dumps(value, default=str))), allow_nan=False)


def _import_user_file(path: str, options: Any, protocol: str):
    """Read and check a user's file, then keep a copy in the data home so its runs can be evaluated again.

    The file is read and checked against the protocol first: a rejected file leaves nothing in
    uploads/. The copy is stored by :func:`~recsys_core.datasets.store_user_file`, as the app stores
    an upload (same content-hash name for the same bytes, written atomically). Returns the
    DataSource (pointing at the copy, naming the file as given) and the Interactions.
    """
    from .datasets import read_user_file, store_user_file
    from .datasets.source import DataSource
    from .limits import check_protocol_data

    src = Path(path).expanduser()
    if not src.is_file():
        raise RecsysError(f"no file at {path!r}", "Check the path to your interaction file.")
    data = read_user_file(src, options, name=src.stem, display_name=src.name)
    check_protocol_data(data, protocol)
    stored = store_user_file(src, display_name=src.name)
    return DataSource.file(stored.path, options, name=src.stem, display_name=src.name), data


def cmd_generate(args: argparse.Namespace) -> int:
    import time

    from .datasets.synthetic import SyntheticConfig, generate_synthetic, write_synthetic

    config = SyntheticConfig(n_users=args.users, n_items=args.items, n_interactions=args.interactions, n_groups=args.groups, seed=args.seed)
    started = time.perf_counter()
    paths = write_synthetic(generate_synthetic(config), args.out)
    print(
        f"{args.interactions:,} interactions of {args.users:,} users and {args.items:,} items written to {paths[0]} in {time.perf_counter() - started:.1f} s"
    )
    print(f"hidden groups: {paths[1]}, {paths[2]}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .experiment import evaluate_run, evaluate_run_with_beyond

    if args.json:
        result, beyond = evaluate_run_with_beyond(args.run, protocol=args.protocol)
        print(
            _json_line(
                {
                    "run_id": args.run,
                    "protocol": result.protocol,
                    "metrics": result.metrics,
                    "intervals": result.intervals,
                    "differences_meaningful": result.differences_meaningful,
                    "note": result.meaning_note,
                    "beyond": beyond,
                }
            )
        )
    else:
        result = evaluate_run(args.run, protocol=args.protocol)
        print(f"run {args.run}, {result.protocol}, test split, {len(result.users)} users")
        print(result.summary())
        if result.meaning_note:
            print(f"note: {result.meaning_note}")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from .limits import MAX_K
    from .runs import load_run

    if not 1 <= args.k <= MAX_K:
        raise RecsysError(f"--k must be between 1 and {MAX_K}, not {args.k}")
    run = load_run(args.run)
    from .drugs import explorer_for_run, is_drug_run

    if is_drug_run(run) and (args.similar_to is not None or args.reverse or args.item is not None or args.user is not None):
        # Drug data answers the question a person asks: both parts, with the patients' evidence.
        explorer = explorer_for_run(run)
        if args.similar_to is not None:
            answer = explorer.similar_to(args.similar_to, k=args.k)
        elif args.reverse or args.item is not None:
            if args.item is None:
                raise RecsysError("--reverse needs --item", 'For example: --reverse --item "Etonogestrel"')
            answer = explorer.for_drug(args.item, k=args.k)
        else:
            answer = explorer.for_condition(args.user, k=args.k, order=args.order)
        if args.json:
            print(json.dumps(answer.to_json()))
        else:
            print(answer.text() if args.similar_to is not None else answer.text(max_rows=args.k))
        return 0
    if args.similar_to is not None:
        table = _similar_items(run, args.similar_to, args.k)
    elif args.reverse or args.item is not None:
        if args.item is None:
            raise RecsysError("--reverse needs --item", 'For example: --reverse --item "Humira"')
        table = run.rank_users_for_item(args.item, k=args.k).drop(columns=["rank_first", "tied"])
    else:
        if args.user is None:
            raise RecsysError(
                "recommend needs --user (or --reverse --item, or --similar-to)", f"Name a {run.users.kind} of run {args.run}."
            )
        table = run.recommend(args.user, k=args.k, exclude_seen=not args.include_seen)
    if args.json:
        print(json.dumps(json.loads(table.to_json(orient="records", default_handler=str))))
        return 0
    columns = [c for c in table.columns if c not in ("item_index",)]
    _print_table([{c: _fmt(v) for c, v in row.items()} for row in table[columns].to_dict("records")], columns)
    return 0


def _similar_items(run, raw_item: str, k: int):
    """Items like one item by the run's item-item similarity, with rank text and a 0-100 strength."""
    import numpy as np
    import pandas as pd

    from .explain import item_rank_counts, rank_strength, rank_text

    item = run.items.index(raw_item)
    similarity = np.asarray(run.model.item_similarity(np.array([item]))[0], dtype=np.float64)
    similarity[item] = -np.inf
    first, tied = item_rank_counts(similarity[None, :], np.arange(len(similarity))[None, :])
    others = np.delete(np.arange(len(similarity)), item)
    chosen = others[np.lexsort((others, -similarity[others]))[:k]]
    n = len(similarity) - 1
    noun = f"{run.items.kind}s"
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(chosen) + 1),
            "title": run.item_titles()[chosen],
            "model_rank": [rank_text(f, t, n, noun) for f, t in zip(first[0][chosen], tied[0][chosen])],
            "strength": rank_strength(first[0][chosen], tied[0][chosen], n),
        }
    )


def cmd_runs(args: argparse.Namespace) -> int:
    from .runs import BrokenRun, list_runs

    runs = list_runs()
    if args.json:
        print(_json_line([r.to_json() for r in runs]))
        return 0
    if not runs:
        print("No runs yet. Train one: python -m recsys_core train --dataset ml-100k --model ease")
        return 0
    rows = []
    for r in runs:
        if isinstance(r, BrokenRun):
            rows.append({"run_id": r.run_id, "model": "(unreadable)"})
            continue
        metrics = r.scores.values
        rows.append(
            {
                "run_id": r.run_id,
                "dataset": r.dataset.name,
                "model": r.model.name,
                "protocol": r.protocol,
                r.headline: _fmt(metrics.get(r.headline, "")),
                "NDCG@10": _fmt(metrics.get("NDCG@10", "")) if "NDCG@10" in metrics else "",
                "fit s": f"{r.history.fit_seconds:.1f}",
            }
        )
    columns = list(dict.fromkeys(k for row in rows for k in row))
    _print_table(rows, columns)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .datasets.source import DataSource
    from .tuning import tune

    source = DataSource.builtin(args.dataset)
    data = source.load(download=True, progress=not args.json)

    def progress(study) -> None:
        if not args.json:
            trial = study.trials[-1]
            value = "" if trial.value is None else f"{trial.value:.4f}"
            print(f"trial {trial.number}: {trial.state.name.lower()} {value} {trial.params}", flush=True)

    result = tune(
        data,
        args.model,
        protocol=args.protocol,
        trials=args.trials,
        timeout=args.timeout,
        seed=args.seed,
        device=args.device,
        epochs=args.epochs,
        source=source,
        train=not args.no_train,
        on_trial=progress,
        threads=args.threads,
    )
    summary = {
        "study": result.study_name,
        "storage": result.storage,
        "objective": f"validation {result.metric}",
        "best_params": result.best_params,
        "best_value": result.best_value,
        "trials": len(result.trials),
        "run_id": result.run_id,
        "test_metrics": result.test_metrics,
    }
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(
            f"study {result.study_name}: {len(result.trials)} trials, best validation {result.metric} {result.best_value} with {result.best_params}"
        )
        if result.run_id:
            print(
                f"run {result.run_id} (best configuration, tested once): "
                + ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items())
            )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    path = write_report(args.runs, args.out, n_users=args.users, seed=args.seed)
    print(f"report written to {path} ({path.stat().st_size / 1e6:.1f} MB; opens offline in any browser)")
    return 0


def _add_datasets_command(sub: argparse._SubParsersAction) -> None:
    """The ``datasets`` sub-command's arguments."""
    p = sub.add_parser("datasets", help="list the built-in datasets and whether each is in the data home")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_datasets)


def _add_fetch_command(sub: argparse._SubParsersAction) -> None:
    """The ``fetch`` sub-command's arguments."""
    p = sub.add_parser("fetch", help="download a built-in dataset into the data home (or import files you have)")
    p.add_argument("name", help="dataset name, e.g. ml-100k (see `datasets`)")
    p.add_argument("--source", help="a file, folder or zip you already have, imported instead of downloading")
    p.add_argument("--force", action="store_true", help="fetch again even if the data is there")
    p.set_defaults(func=cmd_fetch)


def _add_train_command(sub: argparse._SubParsersAction) -> None:
    """The ``train`` sub-command's arguments."""
    from .datasets.user_files import DUPLICATE_RULES
    from .models import MODEL_NAMES

    p = sub.add_parser("train", help="train a model, evaluate it once on the test split and save the run")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--dataset", default="ml-100k", help="built-in dataset (default ml-100k)")
    data.add_argument("--csv", help="your own interaction file (CSV, TSV or parquet)")
    p.add_argument("--model", required=True, choices=MODEL_NAMES, help="model to train")
    p.add_argument("--epochs", type=int, help="maximum epochs (default: the model's own)")
    p.add_argument("--seed", type=int, default=0, help="random seed for split, sampling and training (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument(
        "--protocol", default=DEFAULT_PROTOCOL, choices=PROTOCOL_CHOICES, help=f"evaluation protocol (default {DEFAULT_PROTOCOL})"
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a model setting; repeatable")
    p.add_argument(
        "--refit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="refit the chosen configuration on train + validation before testing, so every model knows the validation interaction (default; --no-refit tests the model selected on validation as it is)",
    )
    p.add_argument(
        "--loo-order",
        default="time",
        choices=("time", "random"),
        help="leave-one-out: hold out each user's latest items (time, default) or seeded random ones (random)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument(
        "--threads", type=_positive_int, default=None, metavar="N",
        help="CPU threads for training (default: one per physical core, one for BPR/GMF/MLP/NeuMF; 1 is faster on a machine busy with other work, with results differing in the last digits)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="compile each network's forward with torch.compile before training (slower first step, faster steps after; mostly for GPUs)",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training under torchrun (gloo on CPU, nccl on GPU); rank 0 saves and prints",
    )
    p.add_argument("--user-col", help="--csv: column with user ids")
    p.add_argument("--item-col", help="--csv: column with item ids")
    p.add_argument("--rating-col", help="--csv: column with ratings")
    p.add_argument("--timestamp-col", help="--csv: column with times (unix seconds or dates)")
    p.add_argument("--weight-col", help="--csv: column with interaction weights")
    p.add_argument("--title-col", help="--csv: column with item titles")
    p.add_argument(
        "--threshold",
        type=_threshold,
        default="default",
        help="positive rule: ratings >= this are positive feedback, the rest evidence only; 'none' keeps every "
        "interaction (default: the data set's own rule: 7 of 10 on Drugs.com data, none elsewhere)",
    )
    p.add_argument(
        "--duplicates",
        default="latest",
        choices=DUPLICATE_RULES,
        help="--csv: repeated (user, item) rows become their latest row (latest, default), with the weight column summed (sum) "
        "or with the number of rows as weight (count)",
    )
    p.add_argument("--min-user-interactions", type=int, default=0, help="--csv: k-core filter, minimum per user")
    p.add_argument("--min-item-interactions", type=int, default=0, help="--csv: k-core filter, minimum per item")
    p.add_argument(
        "--drop-blank-ratings", action="store_true", help="--csv: drop the rows whose rating is blank instead of refusing the file"
    )
    p.set_defaults(func=cmd_train)


def _add_generate_command(sub: argparse._SubParsersAction) -> None:
    """The ``generate`` sub-command's arguments."""
    p = sub.add_parser("generate", help="write a synthetic MovieLens-shaped data set with hidden taste groups (parquet)")
    p.add_argument("--users", type=int, default=138_493, help="number of users (default: ML-20M's 138,493)")
    p.add_argument("--items", type=int, default=26_744, help="number of items (default: ML-20M's 26,744)")
    p.add_argument("--interactions", type=int, default=20_000_263, help="number of distinct (user, item) rows (default: ML-20M's)")
    p.add_argument("--groups", type=int, default=20, help="hidden taste groups (default 20)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--out", required=True, help="output file NAME.parquet; the groups go to NAME.user_groups.parquet and NAME.item_groups.parquet"
    )
    p.set_defaults(func=cmd_generate)


def _add_evaluate_command(sub: argparse._SubParsersAction) -> None:
    """The ``evaluate`` sub-command's arguments."""
    p = sub.add_parser("evaluate", help="evaluate a saved run again on its test split")
    p.add_argument("--run", required=True, help="run id (see `runs`)")
    p.add_argument("--protocol", choices=PROTOCOL_CHOICES, help="protocol (default: the run's own)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)


def _add_recommend_command(sub: argparse._SubParsersAction) -> None:
    """The ``recommend`` sub-command's arguments."""
    p = sub.add_parser(
        "recommend",
        help="top items for a user of a saved run (or users for an item with --reverse, or items like one with --similar-to); "
        "on drug data both parts of the answer with the patients' evidence",
    )
    p.add_argument("--run", required=True, help="run id (see `runs`)")
    p.add_argument("--user", help='raw user id; on drug data a condition, e.g. "Rheumatoid Arthritis"')
    p.add_argument("--item", help='raw item id for --reverse, e.g. "Humira"')
    p.add_argument("--reverse", action="store_true", help="rank users (conditions) for --item")
    p.add_argument("--similar-to", metavar="NAME", help='items (drugs) like this one, e.g. --similar-to "Etonogestrel"')
    p.add_argument("--k", type=int, default=10, help="how many (default 10)")
    p.add_argument("--include-seen", action="store_true", help="also show items the user already has")
    p.add_argument(
        "--order",
        choices=("model", "evidence"),
        default="model",
        help="drug data, part 1 of a condition's answer: by the model (default) or by the reviews' evidence "
        "(positive share's Wilson 95%% lower bound, then number of reviews)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_recommend)


def _add_tune_command(sub: argparse._SubParsersAction) -> None:
    """The ``tune`` sub-command's arguments."""
    from .models import MODEL_NAMES

    p = sub.add_parser("tune", help="search a model's settings with Optuna on validation, then train the best and test it once")
    p.add_argument("--dataset", default="ml-100k", help="built-in dataset (default ml-100k)")
    p.add_argument("--model", required=True, choices=MODEL_NAMES, help="model to tune")
    p.add_argument("--trials", type=int, default=30, help="trials to add to the study (default 30; a study resumes where it stopped)")
    p.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    p.add_argument("--epochs", type=int, help="maximum epochs per trial (default: the model's own)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the sampler and training (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument(
        "--protocol", default=DEFAULT_PROTOCOL, choices=PROTOCOL_CHOICES, help=f"evaluation protocol (default {DEFAULT_PROTOCOL})"
    )
    p.add_argument("--no-train", action="store_true", help="only search; do not train and test the best configuration")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="CPU threads for every fit (default: as for train)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(func=cmd_tune)


def _add_report_command(sub: argparse._SubParsersAction) -> None:
    """The ``report`` sub-command's arguments."""
    p = sub.add_parser("report", help="one self-contained HTML report of saved runs, to hand to stakeholders")
    p.add_argument("--runs", required=True, nargs="+", metavar="RUN", help="run ids on the same data and split (see `runs`)")
    p.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")
    p.add_argument("--users", type=int, default=3, help="sample users shown with each model's top 10 (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed choosing the sample users (default 0)")
    p.set_defaults(func=cmd_report)


def _add_runs_command(sub: argparse._SubParsersAction) -> None:
    """The ``runs`` sub-command's arguments."""
    p = sub.add_parser("runs", help="list saved runs with their headline metrics")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_runs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recsys_core", description="Recsys Explorer: neural recommenders with leak-free evaluation."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_datasets_command(sub)
    _add_fetch_command(sub)
    _add_train_command(sub)
    _add_generate_command(sub)
    _add_evaluate_command(sub)
    _add_recommend_command(sub)
    _add_tune_command(sub)
    _add_report_command(sub)
    _add_runs_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .safe_text import VisibleControls, terminal_lines

    # Titles, ids and names come from data: their control characters are shown, never obeyed by the terminal.
    stdout, sys.stdout = sys.stdout, VisibleControls(sys.stdout)
    try:
        return args.func(args)
    except RecsysError as error:
        print(f"error: {terminal_lines(error.message.split(chr(10)))}", file=sys.stderr)
        if error.hint:
            print(terminal_lines(error.hint.split(chr(10))), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
