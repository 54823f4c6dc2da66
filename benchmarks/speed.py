"""Speed and memory of every model on MovieLens 100K (or any built-in data in the home).

Per model, each in its own process so peak memory is its own: fit seconds (default settings, a
fixed number of epochs, no early stopping), seconds per epoch, full-ranking scoring throughput
(users per second over all items) and peak resident memory.

Writes benchmarks/results/speed.{json,md}.

    python benchmarks/speed.py [--epochs 3] [--models ease,neumf] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import markdown_table, write  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


def measure(model_name: str, epochs: int, device: str, data_path: str) -> dict:
    import resource

    import numpy as np

    from recsys_core.datasets import read_ml100k
    from recsys_core.models import create_model
    from recsys_core.splits import leave_one_out
    from recsys_core.trainer import Trainer

    data = read_ml100k(data_path)
    split = leave_one_out(data)
    model = create_model(model_name)
    trainer = Trainer(device=device, seed=0, epochs=epochs, patience=0)
    started = time.perf_counter()
    history = trainer.fit(model, split.train, validation=None)
    fit = time.perf_counter() - started
    users = np.arange(data.n_users)
    model.score(users[:64])  # warm-up
    started = time.perf_counter()
    model.score(users)
    scoring = time.perf_counter() - started
    per_epoch = [e["seconds"] for e in history.epochs if e.get("epoch")]
    return {
        "model": model_name,
        "device": history.device,
        "epochs": len(per_epoch),
        "fit_seconds": fit,
        "seconds_per_epoch": float(np.mean(per_epoch)) if per_epoch else None,
        "users_per_second": data.n_users / scoring,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    from recsys_core.models import MODEL_NAMES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", help="comma-separated subset (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.epochs, args.device, args.data)))
        return
    rows, results = [], []
    for name in args.models.split(",") if args.models else MODEL_NAMES:
        out = subprocess.run(
            [sys.executable, __file__, "--one", name, "--epochs", str(args.epochs), "--device", args.device, "--data", args.data],
            capture_output=True, text=True,
        )
        if out.returncode:
            print(out.stderr[-2000:], file=sys.stderr)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        rows.append({
            "model": name, "device": r["device"], "epochs": r["epochs"], "fit s": f"{r['fit_seconds']:.2f}",
            "s / epoch": f"{r['seconds_per_epoch']:.2f}" if r["seconds_per_epoch"] else "closed form",
            "scoring users/s (all items)": f"{r['users_per_second']:,.0f}", "peak RSS MB": f"{r['peak_rss_mb']:.0f}",
        })
        print(rows[-1], flush=True)
    table = markdown_table(rows, ["model", "device", "epochs", "fit s", "s / epoch", "scoring users/s (all items)", "peak RSS MB"])
    write("speed", {"dataset": "ml-100k", "epochs": args.epochs, "results": results}, table)


if __name__ == "__main__":
    main()
