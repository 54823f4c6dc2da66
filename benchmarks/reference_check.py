"""A cross-check no one tuned to: leave-one-out + 99 negatives + HR/NDCG, written again from the
protocol's definition in plain numpy, against the project's split, evaluator and models.

What is rebuilt here, without calling ``recsys_core.evaluation`` or ``recsys_core.splits``' code:

* the split, from the definition: one row per (user, item), the latest; per user with at least 3
  distinct items the latest interaction is the test item and the second latest the validation item,
  same-time interactions ordered by a seeded random ranking of the items that depends only on their
  raw ids (items sorted by pandas' keyed SipHash of the id's text, the key the first 16 hex digits of
  BLAKE2b-64 of the seed's decimal text); the rest is train. It must equal the project's split.
* the candidates are the project's (they are a seeded sample), checked against the definition: the
  test item first, then 99 distinct items, none of them a positive of that user in any part.
* the scores: popularity (number of users with the item in the data the model was fitted on) and
  EASE (B = I − P·diag(1/diag P), P = (XᵀX + λI)⁻¹, λ as the project chose it on validation) from the
  fitted model's own data, in float64; compared with the project model's scores on the candidates.
* the metrics: rank = number of negatives scored above the test item; HR@K = mean(rank < K),
  NDCG@K = mean(1/log2(rank + 2) for rank < K), MRR = mean(1/(rank + 1)).

Ties. The project breaks exact ties at random with a fixed seed. A negative whose reference score
is within a relative 1e-5 of the test item's (exact ties, e.g. popularity counts, or float32 noise)
may fall either side, so for those users the project's rank must lie in [strictly above, strictly
above + tied] and the reference takes it; for every other user the rank is the reference's own. The
table shows how many users had a tie and the tie-aware expected HR@10 (ties split uniformly at random).

The project's metrics must agree with the reference's to 1e-6 (and every rank exactly).

    python benchmarks/reference_check.py [--ml100k ../shared/data/ml-100k] [--drugs ../shared/data/drugscom-sample]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import markdown_table, write  # noqa: E402

KS = (5, 10, 20)
TOLERANCE = 1e-6
TIE_RELATIVE = 1e-5


@dataclass(frozen=True)
class ReferenceSplit:
    """(user, item) pairs of each part, as index arrays; ``test`` and ``validation`` sorted by user."""

    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]


def reference_split(
    user: np.ndarray, item: np.ndarray, timestamp: np.ndarray, item_ids: np.ndarray, seed: int, min_interactions: int = 3
) -> ReferenceSplit:
    """Leave-one-out from its definition (see the module docstring); ``item_ids[i]`` is item i's raw id."""
    n_items = len(item_ids)
    user, item, timestamp = np.asarray(user, np.int64), np.asarray(item, np.int64), np.asarray(timestamp, np.float64)
    # one row per (user, item): the latest (equal times: the later row)
    rows = np.lexsort((np.arange(len(user)), timestamp, item, user))
    pair = user[rows] * n_items + item[rows]
    last = np.r_[pair[1:] != pair[:-1], True]
    rows = rows[last]
    user, item, timestamp = user[rows], item[rows], timestamp[rows]
    key = hashlib.blake2b(str(seed).encode(), digest_size=8).hexdigest()
    item_hash = pd.util.hash_array(np.array([str(raw) for raw in item_ids], dtype=object), hash_key=key, categorize=False)
    order = np.lexsort((item_hash[item], timestamp, user))
    user, item = user[order], item[order]
    counts = np.bincount(user)
    is_last = np.r_[user[1:] != user[:-1], True]
    is_second = np.r_[is_last[1:], False] & ~is_last
    eligible = counts[user] >= min_interactions
    test = is_last & eligible
    validation = is_second & eligible
    train = ~(test | validation)
    return ReferenceSplit((user[train], item[train]), (user[validation], item[validation]), (user[test], item[test]))


def _pairs(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    return np.sort(np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64))


def check_split(reference: ReferenceSplit, split) -> None:
    """The project's split must hold exactly the reference's pairs in each part."""
    n_items = split.n_items
    for name in ("train", "validation", "test"):
        ours = _pairs(*getattr(reference, name), n_items)
        part = getattr(split, name)
        theirs = _pairs(part.user, part.item, n_items)
        if not np.array_equal(ours, theirs):
            raise AssertionError(f"the project's {name} part differs from the definition ({len(theirs)} vs {len(ours)} pairs)")


def check_candidates(candidates: np.ndarray, users: np.ndarray, reference: ReferenceSplit, n_items: int, n_negatives: int = 99) -> None:
    """Target first, then ``n_negatives`` distinct items that are no positive of the user anywhere."""
    test_users, test_items = reference.test
    if not np.array_equal(users, test_users) or not np.array_equal(candidates[:, 0], test_items):
        raise AssertionError("the candidates' first column is not each test user's test item")
    if candidates.shape[1] != n_negatives + 1:
        raise AssertionError(f"{candidates.shape[1] - 1} negatives per user, not {n_negatives}")
    ordered = np.sort(candidates, axis=1)
    if np.any(ordered[:, 1:] == ordered[:, :-1]):
        raise AssertionError("a user's candidates repeat an item")
    positives = np.concatenate([_pairs(*getattr(reference, p), n_items) for p in ("train", "validation", "test")])
    keys = users[:, None] * n_items + candidates[:, 1:]
    if np.isin(keys, positives).any():
        raise AssertionError("a sampled negative is a positive of its user")


def history_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    """Dense binary users × items matrix (float64)."""
    matrix = np.zeros((n_users, n_items))
    matrix[users, items] = 1.0
    return matrix


def reference_scores(
    model_name: str, fitted_on: np.ndarray, history: np.ndarray, users: np.ndarray, candidates: np.ndarray, l2: float | None
) -> np.ndarray:
    """Scores of ``candidates`` (users × c) from their definitions; ``fitted_on`` is the binary
    matrix the model was fitted on, ``history`` what each user is known to have at test time."""
    if model_name == "pop":
        counts = fitted_on.sum(axis=0)
        return counts[candidates]
    if model_name == "ease":
        gram = fitted_on.T @ fitted_on + l2 * np.eye(fitted_on.shape[1])
        precision = np.linalg.inv(gram)
        weights = -precision / np.diag(precision)[None, :]
        np.fill_diagonal(weights, 0.0)
        full = history[users] @ weights
        return np.take_along_axis(full, candidates, axis=1)
    raise ValueError(f"no reference for {model_name}")


def rank_bounds(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per user: negatives clearly above the target (column 0) and negatives tied with it."""
    target = scores[:, :1]
    tolerance = TIE_RELATIVE * np.maximum(np.abs(target), 1e-12)
    above = (scores[:, 1:] > target + tolerance).sum(axis=1)
    tied = (np.abs(scores[:, 1:] - target) <= tolerance).sum(axis=1)
    return above, tied


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, float]:
    out = {}
    for k in KS:
        hit = ranks < k
        out[f"HR@{k}"] = float(hit.mean())
        out[f"NDCG@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
    out["MRR"] = float((1.0 / (ranks + 1.0)).mean())
    return out


def expected_hit_rate(above: np.ndarray, tied: np.ndarray, k: int) -> float:
    """HR@k expected when the target's ties are broken uniformly at random."""
    slots = np.clip(k - above, 0, tied + 1)
    return float((slots / (tied + 1)).mean())


def check_model(data, model_name: str, seed: int = 0, device: str = "cpu") -> dict:
    """Fit ``model_name`` with the project (default run: validation, refit, one test pass) and
    check its split, candidates, scores, ranks and metrics against the reference."""
    from recsys_core.evaluation import Evaluator
    from recsys_core.experiment import run_experiment
    from recsys_core.splits import make_split

    if data.timestamp is None:
        raise ValueError("the reference leave-one-out is defined for data with timestamps")
    reference = reference_split(data.user, data.item, data.timestamp, data.items.ids, seed)
    split = make_split(data, "loo-sampled", seed=seed)
    check_split(reference, split)
    result = run_experiment(data, model_name, protocol="loo-sampled", seed=seed, device=device, save=False, split=split)
    evaluator = Evaluator(split, "test", "loo-sampled", seed=seed)
    users, candidates = evaluator.users, evaluator.candidates
    check_candidates(candidates, users, reference, data.n_items)

    n_users, n_items = data.n_users, data.n_items
    known = history_matrix(*(np.concatenate(parts) for parts in zip(reference.train, reference.validation)), n_users, n_items)
    refitted = result.record["refit"]["done"]
    fitted_on = known if refitted else history_matrix(*reference.train, n_users, n_items)
    ours = reference_scores(model_name, fitted_on, known, users, candidates, result.model.meta.get("l2"))
    theirs = result.model.score(users, candidates, history=split.history("test").to_csr()).astype(np.float64)
    score_error = float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(ours), 1.0)))
    if score_error > 1e-4:
        raise AssertionError(f"{model_name}: the project's scores differ from the reference by {score_error:.2e} (relative)")

    above, tied = rank_bounds(ours)
    project_ranks = result.test.per_user["rank"].astype(np.int64)
    if not np.array_equal(result.test.users, users):
        raise AssertionError("the project evaluated other users than the reference test users")
    outside = (project_ranks < above) | (project_ranks > above + tied)
    if outside.any():
        raise AssertionError(f"{model_name}: {int(outside.sum())} users' ranks fall outside what their scores allow")
    ranks = np.where(tied == 0, above, project_ranks)  # ties: the project's seeded choice, checked in bounds above
    reference_metrics = metrics_from_ranks(ranks)
    differences = {name: abs(value - result.test.metrics[name]) for name, value in reference_metrics.items()}
    worst = max(differences, key=differences.get)
    if differences[worst] > TOLERANCE:
        raise AssertionError(
            f"{model_name}: {worst} is {result.test.metrics[worst]} in the project and {reference_metrics[worst]} in the reference"
        )
    return {
        "dataset": data.name,
        "model": model_name,
        "users": int(len(users)),
        "refit": refitted,
        "HR@10 project": round(result.test.metrics["HR@10"], 6),
        "HR@10 reference": round(reference_metrics["HR@10"], 6),
        "NDCG@10 project": round(result.test.metrics["NDCG@10"], 6),
        "NDCG@10 reference": round(reference_metrics["NDCG@10"], 6),
        "max metric difference": f"{differences[worst]:.1e}",
        "max score difference (relative)": f"{score_error:.1e}",
        "users with ties": int((tied > 0).sum()),
        "tie-aware expected HR@10": round(expected_hit_rate(above, tied, 10), 6),
        "note": result.test.meaning_note or "",
    }


def reference_check(datasets: list, models: tuple[str, ...] = ("pop", "ease"), seed: int = 0, device: str = "cpu") -> list[dict]:
    """Every model on every data set; raises AssertionError at the first disagreement."""
    return [check_model(data, name, seed=seed, device=device) for data in datasets for name in models]


def main() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ml100k", default=str(shared / "ml-100k"))
    parser.add_argument("--drugs", default=str(shared / "drugscom-sample"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from recsys_core.datasets import read_drugscom, read_ml100k
    from recsys_core.datasets.builtin import DRUG_POSITIVE_THRESHOLD
    from recsys_core.experiment import keep_positives

    # Drug data with the product's positive rule (reviews rated 7-10), as every drug run is trained and tested.
    drugs = keep_positives(read_drugscom(args.drugs, name="drugscom-sample"), DRUG_POSITIVE_THRESHOLD)
    datasets = [read_ml100k(args.ml100k), drugs]
    rows = reference_check(datasets, seed=args.seed)
    columns = list(rows[0])
    table = "#### Reference check: leave-one-out + 99 negatives, re-implemented from the definition\n\n" + markdown_table(rows, columns)
    write("reference_check", {"seed": args.seed, "tolerance": TOLERANCE, "results": rows}, table)
    print(f"\nall {len(rows)} checks agree to {TOLERANCE} (split, candidates, scores, ranks, HR/NDCG@5/10/20, MRR)")


if __name__ == "__main__":
    main()
