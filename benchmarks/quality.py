"""Quality of every model on MovieLens 100K with the CLI's default settings.

* ``loo-sampled`` (He et al. 2017) on the test split: HR@10 and NDCG@10 with 95% bootstrap intervals,
  beside the floor each model must reach; full-ranking HR@10 next to it.
* ``heldout-users`` (Liang et al. 2018) for multvae, multdae and ease: Recall@20, Recall@50, NDCG@100.
* ``ratings`` (90/10) for autorec and deeprec: RMSE and MAE.
* drugscom-sample (conditions as users, drugs as items, positives = reviews rated 7-10) with
  ``loo-sampled`` for every ranking model, with the "not meaningful" note where the test set is too
  small to tell models apart.

Writes benchmarks/results/quality.{json,md}; the markdown table goes into the README.

    python benchmarks/quality.py [--data ../shared/data/ml-100k] [--models neumf,ease] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import RESULTS, markdown_table, write  # noqa: E402

FLOORS = {"pop": 0.38, "itemknn": 0.59, "bpr": 0.60, "gmf": 0.61, "mlp": 0.59, "neumf": 0.635, "ease": 0.635, "ials": 0.635,
          "multvae": 0.62, "multdae": 0.61, "cdae": 0.59, "svae": 0.57}
RANKING = list(FLOORS) + ["autorec", "deeprec"]
HELDOUT = ["multvae", "multdae", "ease", "ials"]
RATINGS = ["autorec", "deeprec"]


def interval(result, name):
    lo, hi = result.intervals[name]
    return f"{result.metrics[name]:.4f} [{lo:.3f}, {hi:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"))
    parser.add_argument("--models", help="comma-separated subset (default: all)")
    parser.add_argument("--drugs", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "drugscom-sample"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from recsys_core.datasets import read_drugscom, read_ml100k
    from recsys_core.datasets.builtin import DRUG_POSITIVE_THRESHOLD
    from recsys_core.experiment import keep_positives, run_experiment

    data = read_ml100k(args.data)
    drugs = keep_positives(read_drugscom(args.drugs, name="drugscom-sample"), DRUG_POSITIVE_THRESHOLD)
    chosen = set(args.models.split(",")) if args.models else None
    previous = RESULTS / "quality.json"
    results = json.loads(previous.read_text()).get("results", {}) if previous.exists() and chosen else {}

    def run(model, protocol, on=None, prefix=""):
        key = f"{prefix}{model}/{protocol}"
        print(f"… {key}", flush=True)
        started = time.perf_counter()
        out = run_experiment(on if on is not None else data, model, protocol=protocol, seed=args.seed, device=args.device, save=False)
        results[key] = {
            "model": model,
            "protocol": protocol,
            "metrics": out.test.metrics,
            "intervals": {k: list(v) for k, v in out.test.intervals.items()},
            "full": out.evaluations["loo-full"].metrics if "loo-full" in out.evaluations else None,
            "fit_seconds": out.record["fit_seconds"],
            "wall_seconds": time.perf_counter() - started,
            "threads": sorted({int(e["threads"]) for e in out.record["history"] if "threads" in e}),
            "load": os.getloadavg()[0],
            "epochs_run": out.record["epochs_run"],
            "best_epoch": out.record["best_epoch"],
            "device": out.record["device"],
            "refit": out.record["refit"]["done"],
            "note": out.test.meaning_note,
            "n_users": int(len(out.test.users)),
        }
        print(f"  {out.test.summary()}", flush=True)
        return out

    for model in RANKING:
        if chosen is None or model in chosen:
            run(model, "loo-sampled")
    for model in HELDOUT:
        if chosen is None or model in chosen:
            run(model, "heldout-users")
    for model in RATINGS:
        if chosen is None or model in chosen:
            run(model, "ratings")
    for model in FLOORS:
        if chosen is None or model in chosen:
            run(model, "loo-sampled", on=drugs, prefix="drugscom-sample/")

    rows = []
    for model in RANKING:
        r = results.get(f"{model}/loo-sampled")
        if not r:
            continue
        lo, hi = r["intervals"]["HR@10"]
        floor = FLOORS.get(model)
        rows.append({
            "model": model,
            "HR@10 [95% CI]": f"{r['metrics']['HR@10']:.4f} [{lo:.3f}, {hi:.3f}]",
            "NDCG@10 [95% CI]": "{:.4f} [{:.3f}, {:.3f}]".format(r["metrics"]["NDCG@10"], *r["intervals"]["NDCG@10"]),
            "floor": f"{floor:.3f}" if floor else "—",
            "meets": ("yes" if r["metrics"]["HR@10"] >= floor else "NO") if floor else "—",
            "full HR@10": f"{r['full']['HR@10']:.4f}" if r.get("full") else "",
            "fit s": f"{r['fit_seconds']:.1f}",
            "epochs": r["epochs_run"],
        })
    table = "#### ml-100k, loo-sampled (99 negatives), test split, defaults, seed 0\n\n"
    table += markdown_table(rows, ["model", "HR@10 [95% CI]", "NDCG@10 [95% CI]", "floor", "meets", "full HR@10", "fit s", "epochs"])
    held = [
        {"model": m, **{k: "{:.4f} [{:.3f}, {:.3f}]".format(r["metrics"][k], *r["intervals"][k]) for k in ("Recall@20", "Recall@50", "NDCG@100")},
         "fit s": f"{r['fit_seconds']:.1f}"}
        for m in HELDOUT if (r := results.get(f"{m}/heldout-users"))
    ]
    if held:
        table += "\n\n#### ml-100k, heldout-users (10% validation + 10% test users, 80/20), test users\n\n"
        table += markdown_table(held, ["model", "Recall@20", "Recall@50", "NDCG@100", "fit s"])
        table += "\n\nGiven items are each held-out user's chronological first 80%; the last 20% are predicted."
    rated = [
        {"model": m, "RMSE [95% CI]": "{:.4f} [{:.3f}, {:.3f}]".format(r["metrics"]["RMSE"], *r["intervals"]["RMSE"]),
         "MAE": f"{r['metrics']['MAE']:.4f}", "fit s": f"{r['fit_seconds']:.1f}", "epochs": r["epochs_run"]}
        for m in RATINGS if (r := results.get(f"{m}/ratings"))
    ]
    if rated:
        table += "\n\n#### ml-100k, ratings (random 90/10 of the 1–5 ratings, 5% of all for validation)\n\n"
        table += markdown_table(rated, ["model", "RMSE [95% CI]", "MAE", "fit s", "epochs"])
    drug_rows = [
        {"model": m, **{f"{k} [95% CI]": "{:.4f} [{:.3f}, {:.3f}]".format(r["metrics"][k], *r["intervals"][k]) for k in ("HR@10", "NDCG@10")},
         "test users": r.get("n_users", ""), "full HR@10": f"{r['full']['HR@10']:.4f}" if r.get("full") else "", "fit s": f"{r['fit_seconds']:.1f}"}
        for m in FLOORS if (r := results.get(f"drugscom-sample/{m}/loo-sampled"))
    ]
    if drug_rows:
        n_users = drugs.stats()["users"]
        table += f"\n\n#### drugscom-sample (positives: rating 7-10; {len(drugs)} positive reviews, {n_users} conditions), loo-sampled, test split\n\n"
        table += markdown_table(drug_rows, ["model", "HR@10 [95% CI]", "NDCG@10 [95% CI]", "test users", "full HR@10", "fit s"])
        notes = {r["note"] for m in FLOORS if (r := results.get(f"drugscom-sample/{m}/loo-sampled")) and r.get("note")}
        if notes:
            table += "\n\n**Not meaningful:** the intervals here are wider than 0.1 (too few evaluable conditions): "
            table += "differences between models on this data are not meaningful. The table shows that the models run on drug data, not which is better."
    write("quality", {"dataset": "ml-100k + drugscom-sample", "seed": args.seed, "results": results}, table)


if __name__ == "__main__":
    main()
