"""Upload at scale: does a 5M-row parquet fit the app's upload limit, and how long do its steps take?

Writes a synthetic MovieLens-shaped parquet (``recsys_core.datasets.synthetic``: user, item,
timestamp, plus a 1-5 rating column drawn with a fixed seed) of ``--rows`` rows, then runs the steps
the Data page runs on an upload, through the same core functions, in this process:

    store      store_user_file(bytes): the content-hash copy in uploads/ (atomic write)
    sniff      sniff_user_file: format, columns, preview and guesses
    read       read_user_file with the columns mapped (the step "Use this data" shows progress for)

It prints the file's size against ``limits.MAX_UPLOAD_MB`` (Streamlit's ``server.maxUploadSize``),
each step's seconds and the process's peak RSS. The data home is a temporary folder.

    python benchmarks/upload.py [--rows 5000000]

Writes benchmarks/results/upload.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import markdown_table, write  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["RECSYS_HOME"] = tempfile.mkdtemp(prefix="recsys-upload-bench-")

    import numpy as np

    from recsys_core import limits
    from recsys_core.datasets import UserFileOptions, sniff_user_file, store_user_file
    from recsys_core.datasets.synthetic import SyntheticConfig, generate_synthetic
    from recsys_core.datasets.user_files import read_user_file_with_account

    # ML-20M's users/items ratio at a quarter of its users, as benchmarks/scale.py's 5M shape.
    config = SyntheticConfig(n_users=34_623, n_items=6_686, n_interactions=args.rows, seed=args.seed)
    frame = generate_synthetic(config).frame
    frame["rating"] = np.random.default_rng(args.seed).integers(1, 6, len(frame)).astype(np.float32)
    path = Path(os.environ["RECSYS_HOME"]) / "upload.parquet"
    frame.to_parquet(path, index=False)
    del frame
    data = path.read_bytes()  # what the browser hands the app: the whole file in memory

    rows, timings = [], {}
    started = time.perf_counter()
    stored = store_user_file(data, display_name="upload.parquet")
    timings["store"] = time.perf_counter() - started
    started = time.perf_counter()
    sniff = sniff_user_file(stored.path, display_name="upload.parquet")
    timings["sniff"] = time.perf_counter() - started
    options = UserFileOptions(**{f"{role}_col": column for role, column in sniff["guesses"].items() if column})
    started = time.perf_counter()
    interactions, account = read_user_file_with_account(stored.path, options, display_name="upload.parquet")
    timings["read"] = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux
    size_mb = len(data) / 1e6
    for step, seconds in timings.items():
        rows.append({"step": step, "seconds": f"{seconds:.2f}"})
    table = (
        f"{args.rows:,}-row parquet (user, item, rating, timestamp): {size_mb:,.1f} MB; upload limit {limits.MAX_UPLOAD_MB} MB "
        f"({'fits' if size_mb <= limits.MAX_UPLOAD_MB else 'does NOT fit'}); {len(interactions):,} interactions kept, "
        f"peak RSS {peak_gb:.2f} GB\n\n" + markdown_table(rows, ["step", "seconds"])
    )
    write(
        "upload",
        {
            "rows": args.rows,
            "size_mb": size_mb,
            "limit_mb": limits.MAX_UPLOAD_MB,
            "fits": size_mb <= limits.MAX_UPLOAD_MB,
            "seconds": timings,
            "kept": account.kept,
            "peak_rss_gb": peak_gb,
        },
        table,
    )


if __name__ == "__main__":
    main()
