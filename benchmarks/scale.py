"""Scale: every data stage at MovieLens-1M and -20M shape, timed with peak memory, through the public paths.

Synthetic data (``recsys_core.datasets.synthetic``) of three shapes: ML-1M (6,040 users, 3,706 items,
1,000,209 rows), 5M rows and ML-20M (138,493 users, 26,744 items, 20,000,263 rows); the 5M shape
keeps ML-20M's users/items ratio at a quarter of its users. Written once as parquet and CSV under
``benchmarks/results/data/`` (ignored by git), then, for each size, in a fresh process (so its peak
memory is its own):

    read parquet      read_user_file(parquet): ids, times, repeated-pair check, Interactions
    read csv          read_user_file(csv): the same from text
    split             make_split(.., "loo-sampled"): temporal leave-one-out with its leak check
    eval negatives    Evaluator(test, loo-sampled): 99 distinct unseen negatives per user, checked
    train negatives   4 negatives per training positive, one epoch's worth (sample_train_negatives)
    pop + full eval   popularity fit and a full-ranking (loo-full) evaluation over every user

"peak RSS" is the process's high-water mark at the end of a stage (it never goes down, so a stage
that needs less than an earlier one shows the earlier peak). One epoch of BPR, GMF, NeuMF and
Mult-VAE runs in its own process at the sizes given by ``--model-sizes`` (default 1M): on this 2-core
machine an epoch at 20M takes many minutes, so the 20M epoch time is extrapolated linearly from the
measured sizes and printed as such. The fitted exponent b of time ≈ a · rows^b over the sizes is
printed per stage (b ≤ 1: at most linear).

    python benchmarks/scale.py [--sizes 1m,5m,20m] [--model-sizes 1m] [--models bpr,gmf,neumf,multvae]

Writes benchmarks/results/scale.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import RESULTS, markdown_table, write  # noqa: E402

SHAPES = {
    "1m": {"n_users": 6_040, "n_items": 3_706, "n_interactions": 1_000_209},
    "5m": {"n_users": 34_623, "n_items": 26_744, "n_interactions": 5_000_066},
    "20m": {"n_users": 138_493, "n_items": 26_744, "n_interactions": 20_000_263},
}
STAGES = ("read parquet", "read csv", "split", "eval negatives", "train negatives", "pop + full eval")
TARGET_STAGES = ("read parquet", "split", "eval negatives", "train negatives")  # "read + split + sample" < 60 s at 20M


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def data_files(size: str) -> tuple[Path, Path]:
    """The parquet and CSV of one shape, generated (and timed) on first use."""
    folder = RESULTS / "data"
    parquet, csv = folder / f"synthetic-{size}.parquet", folder / f"synthetic-{size}.csv"
    if not parquet.exists() or not csv.exists():
        import pyarrow as pa
        import pyarrow.csv as pacsv

        from recsys_core.datasets.synthetic import generate_synthetic, write_synthetic

        started = time.perf_counter()
        data = generate_synthetic(**SHAPES[size], seed=0)
        seconds = time.perf_counter() - started
        write_synthetic(data, parquet)
        pacsv.write_csv(pa.Table.from_pandas(data.frame, preserve_index=False), csv)
        (folder / f"synthetic-{size}.generate.json").write_text(json.dumps({"generate_seconds": seconds}))
    return parquet, csv


def measure_data(size: str) -> dict:
    import numpy as np

    from recsys_core.datasets import UserFileOptions, read_user_file
    from recsys_core.evaluation import Evaluator
    from recsys_core.models import create_model
    from recsys_core.sampling import positive_keys, sample_train_negatives
    from recsys_core.splits import make_split
    from recsys_core.trainer import fit_model

    parquet, csv = data_files(size)
    options = UserFileOptions(user_col="user", item_col="item", timestamp_col="timestamp")
    out: dict = {"size": size, **SHAPES[size], "stages": {}}
    generated = json.loads((parquet.parent / f"synthetic-{size}.generate.json").read_text())
    out["generate_seconds"] = generated["generate_seconds"]

    def stage(name, fn):
        started = time.perf_counter()
        value = fn()
        out["stages"][name] = {"seconds": time.perf_counter() - started, "peak_rss_mb": _peak_mb()}
        print(f"{size} {name}: {out['stages'][name]['seconds']:.1f} s, peak {out['stages'][name]['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
        return value

    data = stage("read parquet", lambda: read_user_file(parquet, options))
    from_csv = stage("read csv", lambda: read_user_file(csv, options))
    assert len(from_csv) == len(data)
    del from_csv
    split = stage("split", lambda: make_split(data, "loo-sampled", seed=0))
    stage("eval negatives", lambda: Evaluator(split, "test", "loo-sampled", seed=0))

    def train_negatives():
        positives = split.train.to_csr()
        keys = positive_keys(positives)
        return sample_train_negatives(positives, split.train.user, 4, np.random.default_rng(0), keys=keys)

    negatives = stage("train negatives", train_negatives)
    del negatives

    def pop_full():
        model = fit_model(create_model("pop"), split.train, device="cpu")
        return Evaluator(split, "test", "loo-full", seed=0).evaluate(model)

    result = stage("pop + full eval", pop_full)
    out["pop_full_HR@10"] = result.metrics["HR@10"]
    out["users"], out["items"] = data.n_users, data.n_items
    return out


def measure_model(size: str, model_name: str) -> dict:
    from recsys_core.datasets import UserFileOptions, read_user_file
    from recsys_core.models import create_model
    from recsys_core.splits import make_split
    from recsys_core.trainer import Trainer

    parquet, _ = data_files(size)
    data = read_user_file(parquet, UserFileOptions(user_col="user", item_col="item", timestamp_col="timestamp"))
    split = make_split(data, "loo-sampled", seed=0)
    before = _peak_mb()
    model = create_model(model_name)
    started = time.perf_counter()
    history = Trainer(device="cpu", seed=0, epochs=1, patience=0).fit(model, split.train, validation=None)
    return {
        "size": size,
        "model": model_name,
        "rows": SHAPES[size]["n_interactions"],
        "fit_seconds": time.perf_counter() - started,
        "epoch_seconds": [e["seconds"] for e in history.epochs if e.get("epoch")],
        "peak_rss_mb": _peak_mb(),
        "peak_rss_before_fit_mb": before,
    }


def _child(args: list[str]) -> dict | None:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    sys.stderr.write(out.stderr[-4000:])
    if out.returncode:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def fitted_exponent(rows: list[float], seconds: list[float]) -> float | None:
    import numpy as np

    if len(rows) < 2 or min(seconds) <= 0:
        return None
    return float(np.polyfit(np.log(rows), np.log(seconds), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1m,5m,20m")
    parser.add_argument("--model-sizes", default="1m")
    parser.add_argument("--models", default="bpr,gmf,neumf,multvae")
    parser.add_argument("--data-one", help=argparse.SUPPRESS)
    parser.add_argument("--model-one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data_one:
        print(json.dumps(measure_data(args.data_one)))
        return
    if args.model_one:
        print(json.dumps(measure_model(*args.model_one)))
        return

    sizes = [s for s in args.sizes.split(",") if s]
    data_results = [r for r in (_child(["--data-one", size]) for size in sizes) if r]
    rows = []
    for r in data_results:
        row = {"shape": f"{r['size']} ({r['n_users']:,} × {r['n_items']:,}, {r['n_interactions']:,} rows)", "generate s": f"{r['generate_seconds']:.1f}"}
        for name in STAGES:
            s = r["stages"][name]
            row[name] = f"{s['seconds']:.1f} s / {s['peak_rss_mb'] / 1024:.1f} GiB"
        row["read+split+sample s"] = f"{sum(r['stages'][n]['seconds'] for n in TARGET_STAGES):.1f}"
        rows.append(row)
    exponents = {}
    if len(data_results) >= 2:
        n = [r["n_interactions"] for r in data_results]
        for name in STAGES:
            exponents[name] = fitted_exponent(n, [r["stages"][name]["seconds"] for r in data_results])
        rows.append({"shape": "fitted exponent b (time ∝ rows^b)", **{k: f"{v:.2f}" for k, v in exponents.items() if v is not None}})

    model_results = []
    for size in [s for s in args.model_sizes.split(",") if s]:
        for name in args.models.split(","):
            r = _child(["--model-one", size, name])
            if r:
                model_results.append(r)
    model_rows = []
    for r in model_results:
        per_epoch = r["epoch_seconds"][0] if r["epoch_seconds"] else r["fit_seconds"]
        model_rows.append(
            {
                "model": r["model"], "measured at": r["size"], "s / epoch": f"{per_epoch:.1f}",
                "peak RSS GiB": f"{r['peak_rss_mb'] / 1024:.1f}",
                "20M s / epoch (linear extrapolation)": f"{per_epoch * SHAPES['20m']['n_interactions'] / r['rows']:.0f}",
            }
        )
    table = markdown_table(rows, ["shape", "generate s", *STAGES, "read+split+sample s"])
    if model_rows:
        table += "\n\n" + markdown_table(model_rows, list(model_rows[0]))
    write("scale", {"data": data_results, "exponents": exponents, "models": model_results}, table)


if __name__ == "__main__":
    main()
