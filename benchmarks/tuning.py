"""Tuned vs default: HR@10 of bpr, neumf, multvae and ease on MovieLens 100K (loo-sampled, test split).

For each model: a run with the default settings, and a run of the configuration an Optuna study chose
on the validation split (seeded TPE, median pruner; ``recsys_core.tuning``). Both are trained through
``run_experiment`` with the same seed and the same epoch cap, and each is tested once. The table shows
HR@10 and NDCG@10 with 95% bootstrap intervals, the paired difference tuned − default on HR@10 with its
interval, the best validation NDCG@10 of the study and its size. Studies and runs go to a temporary data
home, so nothing of yours is touched. Results merge into benchmarks/results/tuning.{json,md}, so models
can be run one at a time with their own budget:

    python benchmarks/tuning.py --models ease --trials 30
    python benchmarks/tuning.py --models bpr --trials 8 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import RESULTS, markdown_table, write  # noqa: E402

MODELS = ("bpr", "neumf", "multvae", "ease")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"))
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    parser.add_argument("--trials", type=int, default=30, help="trials per study (default 30)")
    parser.add_argument("--timeout", type=float, help="seconds per study")
    parser.add_argument("--epochs", type=int, help="epoch cap for every trial and for both final runs (default: each model's own)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.environ["RECSYS_HOME"] = tempfile.mkdtemp(prefix="recsys-tuning-bench-")
    from recsys_core import tuning
    from recsys_core.comparison import paired_comparison
    from recsys_core.datasets import read_ml100k
    from recsys_core.experiment import run_experiment
    from recsys_core.runs import load_run

    data = read_ml100k(args.data)
    previous = RESULTS / "tuning.json"
    results = json.loads(previous.read_text()).get("results", {}) if previous.exists() else {}
    for model in args.models.split(","):
        print(f"… {model}: default", flush=True)
        started = time.perf_counter()
        default = run_experiment(data, model, "loo-sampled", seed=args.seed, device=args.device, epochs=args.epochs)
        default_seconds = time.perf_counter() - started
        print(f"  {default.test.summary()}", flush=True)
        print(f"… {model}: tuning, {args.trials} trials", flush=True)
        started = time.perf_counter()
        tuned = tuning.tune(
            data, model, "loo-sampled", trials=args.trials, timeout=args.timeout, seed=args.seed, device=args.device, epochs=args.epochs
        )
        tune_seconds = time.perf_counter() - started
        tuned_test = load_run(tuned.run_id).evaluation("loo-sampled")
        paired = paired_comparison(tuned_test, default.test, "HR@10")
        states = [t["state"] for t in tuned.trials]
        results[model] = {
            "model": model,
            "trials": len(tuned.trials),
            "complete": states.count("COMPLETE"),
            "pruned": states.count("PRUNED"),
            "epochs_cap": args.epochs,
            "default": {
                "metrics": default.test.metrics,
                "intervals": {k: list(v) for k, v in default.test.intervals.items()},
                "validation": default.record["validation"],
                "seconds": default_seconds,
            },
            "tuned": {
                "metrics": tuned_test.metrics,
                "intervals": {k: list(v) for k, v in tuned_test.intervals.items()},
                "best_params": tuned.best_params,
                "best_validation": tuned.best_value,
                "seconds": tune_seconds,
            },
            "paired_hr10": {"difference": paired["difference"], "interval": list(paired["interval"]), "test": paired["test"], "p_value": paired["p_value"]},
            "device": default.record["device"],
        }
        print(f"  tuned {tuned_test.summary()}  best {tuned.best_params}", flush=True)

    def cell(block: dict, name: str) -> str:
        lo, hi = block["intervals"][name]
        return f"{block['metrics'][name]:.4f} [{lo:.3f}, {hi:.3f}]"

    rows = []
    for model in MODELS:
        if model not in results:
            continue
        r = results[model]
        lo, hi = r["paired_hr10"]["interval"]
        rows.append(
            {
                "model": model,
                "default HR@10": cell(r["default"], "HR@10"),
                "tuned HR@10": cell(r["tuned"], "HR@10"),
                "tuned − default [95% CI]": f"{r['paired_hr10']['difference']:+.4f} [{lo:+.3f}, {hi:+.3f}]",
                "default NDCG@10": cell(r["default"], "NDCG@10"),
                "tuned NDCG@10": cell(r["tuned"], "NDCG@10"),
                "val NDCG@10 default → best": f"{r['default']['validation'].get('NDCG@10', float('nan')):.4f} → {r['tuned']['best_validation']:.4f}",
                "trials (pruned)": f"{r['trials']} ({r['pruned']})",
                "epoch cap": r["epochs_cap"] or "model's own",
                "tuning s": f"{r['tuned']['seconds']:.0f}",
                "best settings": ", ".join(
                    f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["tuned"]["best_params"].items()
                ),
            }
        )
    columns = list(rows[0]) if rows else []
    write(
        "tuning",
        {"results": results},
        "#### ml-100k, loo-sampled, test split, seed 0: default vs tuned on validation\n\n" + markdown_table(rows, columns),
    )


if __name__ == "__main__":
    main()
