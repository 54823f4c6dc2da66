"""Data-parallel training throughput: training samples per second with 1 and 2 ranks under torchrun.

Each configuration runs ``torchrun --nproc_per_node=N -m recsys_core train --distributed`` on
ml-100k (CPU, gloo) for a fixed number of epochs without early stopping, reads the run's per-epoch
seconds from its run.json and reports samples/s = training positives per epoch / mean epoch seconds
(every rank trains its 1/N shard, so an epoch covers the data once across ranks). On a 2-core machine
two ranks compete for the same cores, so the speed-up measured there is a floor, not what N GPUs give.

    python benchmarks/distributed.py [--model bpr] [--epochs 3] [--ranks 1,2]

Writes benchmarks/results/distributed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks._common import markdown_table, write  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "ml-100k"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(model: str, epochs: int, ranks: int, home: Path) -> dict:
    env = {**os.environ, "RECSYS_HOME": str(home), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ranks}", "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}", "-m", "recsys_core", "train", "--dataset", "ml-100k", "--model", model,
        "--epochs", str(epochs), "--set", "patience=0", "--device", "cpu", "--json", "--distributed",
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    summary = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
    record = json.loads((home / "runs" / summary["run_id"] / "run.json").read_text())
    seconds = [e["seconds"] for e in record["history"] if e.get("epoch")]
    train_rows = 100_000 - 2 * 943  # leave-one-out: every ml-100k user gives a validation and a test item
    mean = sum(seconds) / len(seconds)
    return {"ranks": ranks, "model": model, "epochs": len(seconds), "seconds_per_epoch": mean, "samples_per_second": train_rows / mean,
            "HR@10": summary["metrics"]["HR@10"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bpr")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--ranks", default="1,2")
    args = parser.parse_args()
    from recsys_core.datasets import fetch

    results = []
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        os.environ["RECSYS_HOME"] = str(home)
        fetch("ml-100k", source=DATA, progress=False)
        for ranks in [int(r) for r in args.ranks.split(",")]:
            results.append(measure(args.model, args.epochs, ranks, home))
            print(results[-1], flush=True)
    base = results[0]["samples_per_second"]
    rows = [
        {"ranks": r["ranks"], "model": r["model"], "s / epoch": f"{r['seconds_per_epoch']:.2f}", "samples/s": f"{r['samples_per_second']:,.0f}",
         "speed-up": f"{r['samples_per_second'] / base:.2f}", "test HR@10": f"{r['HR@10']:.4f}"}  # fmt: skip
        for r in results
    ]
    write("distributed", {"results": results}, markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
