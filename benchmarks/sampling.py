"""Negative sampling speed: the vectorised sampler against the per-interaction Python loop
that NCF tutorials use.

Target: 4 negatives for each of 1,000,000 positives in well under a second.

    python benchmarks/sampling.py [--positives 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import markdown_table, write  # noqa: E402
from recsys_core.sampling import positive_keys, sample_eval_negatives, sample_train_negatives  # noqa: E402


def tutorial_loop(users, item_sets, n_items, k, rng):
    """The usual tutorial code: for each positive, draw until the item is unseen."""
    out = []
    for u in users:
        seen = item_sets[u]
        for _ in range(k):
            j = rng.integers(n_items)
            while j in seen:
                j = rng.integers(n_items)
            out.append(j)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--positives", type=int, default=1_000_000)
    parser.add_argument("--negatives", type=int, default=4)
    parser.add_argument("--loop-sample", type=int, default=50_000, help="positives timed for the Python loop (extrapolated)")
    args = parser.parse_args()

    # ML-1M-like shape: 6,040 users, 3,706 items, ~1M positives.
    rng = np.random.default_rng(0)
    n_users, n_items = 6040, 3706
    users = rng.integers(0, n_users, args.positives)
    items = rng.integers(0, n_items, args.positives)
    positives = sp.csr_matrix((np.ones(args.positives, dtype=np.float32), (users, items)), shape=(n_users, n_items))
    positives.sum_duplicates()
    positives.data[:] = 1

    keys = positive_keys(positives)
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        sample_train_negatives(positives, users, args.negatives, np.random.default_rng(1), keys=keys)
        timings.append(time.perf_counter() - start)
    vectorised = min(timings)
    start = time.perf_counter()
    sample_train_negatives(positives, users, args.negatives, np.random.default_rng(1))
    with_keys = time.perf_counter() - start

    item_sets = [set(positives.indices[positives.indptr[u] : positives.indptr[u + 1]].tolist()) for u in range(n_users)]
    start = time.perf_counter()
    tutorial_loop(users[: args.loop_sample], item_sets, n_items, args.negatives, np.random.default_rng(1))
    loop = (time.perf_counter() - start) * args.positives / args.loop_sample

    start = time.perf_counter()
    sample_eval_negatives(positives, np.arange(n_users), 99, np.random.default_rng(2))
    eval_time = time.perf_counter() - start

    rows = [
        {"what": f"train negatives, {args.negatives} per positive, vectorised", "positives": f"{args.positives:,}", "seconds": f"{vectorised:.3f}", "speed-up": f"{loop / vectorised:.0f}×"},
        {"what": "same, including building the membership lookup", "positives": f"{args.positives:,}", "seconds": f"{with_keys:.3f}", "speed-up": f"{loop / with_keys:.0f}×"},
        {"what": "per-interaction Python loop (tutorial), extrapolated", "positives": f"{args.positives:,}", "seconds": f"{loop:.1f}", "speed-up": "1×"},
        {"what": "99 distinct evaluation negatives for every user", "positives": f"{n_users:,} users", "seconds": f"{eval_time:.3f}", "speed-up": ""},
    ]
    table = markdown_table(rows, ["what", "positives", "seconds", "speed-up"])
    write(
        "sampling",
        {"positives": args.positives, "negatives": args.negatives, "vectorised_seconds": vectorised, "with_keys_seconds": with_keys,
         "loop_seconds_extrapolated": loop, "speedup": loop / vectorised, "eval_negatives_seconds": eval_time},
        table,
    )


if __name__ == "__main__":
    main()
