"""Speed and memory of every model on MovieLens 100K (or any built-in data in the home).

Per model, each in its own process so peak memory is its own: fit seconds (default settings, a
fixed number of epochs, no early stopping), seconds per epoch, full-ranking scoring throughput
(users per second over all items) and peak resident memory.

Writes benchmarks/results/speed.{json,md}.

    python benchmarks/speed.py [--epochs 3] [--models ease,neumf] [--device auto] [--threads N]

``--default-fits`` instead times what a person waits for: each model's default run on ml-100k
(``run_experiment`` with the CLI's defaults: selection on validation with early stopping, the refit on
train + validation, both test passes), each in its own process, with the threads the trainer chose,
the 1-minute load average before and after, and whether it met the 60-second target.
Writes benchmarks/results/speed_default_fits.{json,md}.

    python benchmarks/speed.py --default-fits [--models gmf,neumf,svae]

``--threads-compare`` times one epoch of the given models with 1 and with 2 threads, interleaved
(1, 2, 1, 2), each in its own process, with the load beside each run: how much a second thread
gains on a quiet machine and costs on a busy one. Writes benchmarks/results/speed_threads.{json,md}.

``--device-batches`` instead times Mult-VAE's epoch with its batches densified on the host (the path
before issue 9: slice the scipy CSR per batch, densify, copy the block) against batches gathered on
the device from a :class:`~recsys_core.models.device_csr.DeviceCSR` (the model as it is), side by
side in one process on ml-100k and on ML-1M-shaped synthetic data, in the order host, device,
device, host so that drift in the machine's load falls on both. Both paths must give the same
losses (they are the same computation). Writes benchmarks/results/speed_device_batches.{json,md}.

    python benchmarks/speed.py --device-batches [--epochs 2] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import markdown_table, run_this_script, write  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


TARGET_SECONDS = 60.0


def measure_default_fit(model_name: str, device: str, data_path: str) -> dict:
    """One default run (selection + refit + test passes), as ``train --model NAME`` does it."""
    import os

    from recsys_core.datasets import read_ml100k
    from recsys_core.experiment import run_experiment

    data = read_ml100k(data_path)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = run_experiment(data, model_name, device=device, save=False)
    wall = time.perf_counter() - started
    record = result.record
    threads = sorted({int(e["threads"]) for e in record["history"] if "threads" in e})
    return {
        "model": model_name,
        "device": record["device"],
        "fit_seconds": record["fit_seconds"],
        "wall_seconds": wall,
        "epochs_run": record["epochs_run"],
        "best_epoch": record["best_epoch"],
        "refit_epochs": record["refit"].get("epochs"),
        "threads": threads,
        "headline": record["headline"],
        "headline_value": record["metrics"].get(record["headline"]),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def _child(*arguments: str) -> dict | None:
    """This script with ``arguments`` in a fresh process (its peak memory its own): its last line's JSON, or None."""
    return run_this_script(__file__, *arguments)


def default_fits(models: list[str], device: str, data_path: str) -> None:
    rows, results = [], []
    for name in models:
        r = _child("--one-default", name, "--device", device, "--data", data_path)
        if r is None:
            continue
        results.append(r)
        rows.append({
            "model": name, "device": r["device"], "threads": ",".join(map(str, r["threads"])) or "—",
            "selection epochs (best)": f"{r['epochs_run']} ({r['best_epoch'] or '—'})", "refit epochs": r["refit_epochs"] or "—",
            "fit s (selection + refit)": f"{r['fit_seconds']:.1f}", "wall s (with tests)": f"{r['wall_seconds']:.1f}",
            f"under {TARGET_SECONDS:.0f} s": "yes" if r["wall_seconds"] < TARGET_SECONDS else "NO",
            r["headline"]: f"{r['headline_value']:.4f}", "load before → after": f"{r['load_before']:.1f} → {r['load_after']:.1f}",
        })  # fmt: skip
        print(rows[-1], flush=True)
    write("speed_default_fits", {"dataset": "ml-100k", "target_seconds": TARGET_SECONDS, "results": results}, markdown_table(rows, list(rows[0]) if rows else ["model"]))


def threads_compare(models: list[str], epochs: int, device: str, data_path: str) -> None:
    import os

    rows, results = [], []
    for name in models:
        timings: dict[int, list[float]] = {1: [], 2: []}
        loads: dict[int, list[float]] = {1: [], 2: []}
        for threads in (1, 2, 1, 2):
            loads[threads].append(os.getloadavg()[0])
            r = _child("--one", name, "--epochs", str(epochs), "--device", device, "--data", data_path, "--threads", str(threads))
            if r is None:
                continue
            timings[threads].append(r["seconds_per_epoch"] or r["fit_seconds"])
        if not (timings[1] and timings[2]):
            continue
        one, two = min(timings[1]), min(timings[2])
        results.append({"model": name, "one_thread": timings[1], "two_threads": timings[2], "loads": loads})
        rows.append({
            "model": name, "1 thread s / epoch": f"{one:.2f}", "2 threads s / epoch": f"{two:.2f}", "2 ÷ 1": f"{two / one:.2f}",
            "load (1-min) at the runs": f"{min(loads[1] + loads[2]):.1f}–{max(loads[1] + loads[2]):.1f}",
        })  # fmt: skip
        print(rows[-1], flush=True)
    write("speed_threads", {"dataset": "ml-100k", "epochs": epochs, "results": results}, markdown_table(rows, list(rows[0]) if rows else ["model"]))


def measure(model_name: str, epochs: int, device: str, data_path: str, threads: int | None = None) -> dict:
    import resource

    import numpy as np

    from recsys_core.datasets import read_ml100k
    from recsys_core.models import create_model
    from recsys_core.splits import leave_one_out
    from recsys_core.trainer import Trainer

    data = read_ml100k(data_path)
    split = leave_one_out(data)
    model = create_model(model_name)
    trainer = Trainer(device=device, seed=0, epochs=epochs, patience=0, threads=threads)
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


def _host_batch_multvae():
    """Mult-VAE whose epoch builds each batch on the host, as before issue 9 (the baseline)."""
    import numpy as np
    import torch

    from recsys_core.models.vae import MultVAE

    def host_dense(rows, device) -> torch.Tensor:
        rows = rows.tocoo()
        dense = torch.zeros(rows.shape, dtype=torch.float32, device=device)
        if rows.nnz:
            index = torch.as_tensor(np.vstack([rows.row, rows.col]), dtype=torch.long, device=device)
            dense.index_put_((index[0], index[1]), torch.as_tensor(rows.data, dtype=torch.float32, device=device), accumulate=True)
        return dense

    class HostBatchMultVAE(MultVAE):
        def train_epoch(self, context, epoch):
            users, total, count, beta = self._train_users.cpu().numpy(), 0.0, 0, 0.0
            for batch in context.batches(len(users), self.config.batch_size):
                x = host_dense(self.known[users[batch]], self.device)
                beta = self.beta()
                total += self.train_step(self.loss, x, beta) * len(batch)
                self.update_count += 1
                count += len(batch)
            return {"loss": total / max(1, count), "beta": beta}

    return HostBatchMultVAE, host_dense


def _batch_build_seconds(train, host_dense, device: str, batch_size: int, repeats: int = 3) -> tuple[float, float]:
    """Seconds to build one epoch's dense batches alone (no network), host-built against device-built."""
    import numpy as np
    import torch

    from recsys_core.device import resolve_device
    from recsys_core.models.device_csr import DeviceCSR

    target = resolve_device(device)
    known = train.to_csr()
    users = np.flatnonzero(np.diff(known.indptr) > 0)
    order = np.random.default_rng(0).permutation(len(users))
    batches = [users[order[b : b + batch_size]] for b in range(0, len(users), batch_size)]
    device_csr = DeviceCSR.from_scipy(known, target)
    device_batches = [torch.from_numpy(b).to(target) for b in batches]
    host, dev = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        for batch in batches:
            host_dense(known[batch], target)
        host.append(time.perf_counter() - started)
        started = time.perf_counter()
        for batch in device_batches:
            device_csr.dense_rows(batch)
        if target.type == "cuda":
            torch.cuda.synchronize()
        dev.append(time.perf_counter() - started)
    return min(host), min(dev)


def device_batches(epochs: int, device: str, data_path: str) -> None:
    """Mult-VAE s/epoch, host-built against device-built batches (see the module docstring)."""
    import numpy as np

    from recsys_core.datasets import read_ml100k
    from recsys_core.datasets.synthetic import generate_synthetic
    from recsys_core.interactions import Interactions
    from recsys_core.models import create_model
    from recsys_core.splits import leave_one_out
    from recsys_core.trainer import Trainer

    host_model, host_dense = _host_batch_multvae()
    sets = {
        "ml-100k": read_ml100k(data_path),
        "synthetic ML-1M shape": Interactions.from_frame(
            generate_synthetic(n_users=6_040, n_items=3_706, n_interactions=1_000_209, seed=0).frame, timestamp_col="timestamp", name="synthetic-1m"
        ),
    }
    rows, results = [], []
    for label, data in sets.items():
        train = leave_one_out(data).train
        seconds: dict[str, list[float]] = {"host": [], "device": []}
        losses: dict[str, list[float]] = {}
        for path in ("host", "device", "device", "host"):
            model = host_model(create_model("multvae").config) if path == "host" else create_model("multvae")
            history = Trainer(device=device, seed=0, epochs=epochs, patience=0).fit(model, train, validation=None)
            seconds[path] += [e["seconds"] for e in history.epochs if e.get("epoch")]
            losses[path] = [e["loss"] for e in history.epochs if e.get("epoch")]
        host, dev = float(np.mean(seconds["host"])), float(np.mean(seconds["device"]))
        same = losses["host"] == losses["device"]
        build_host, build_device = _batch_build_seconds(train, host_dense, device, model.config.batch_size)
        results.append({"data": label, "rows": len(train), "device": history.device, "epochs": epochs, "host_seconds_per_epoch": host,
                        "device_seconds_per_epoch": dev, "ratio_host_over_device": host / dev, "same_losses": same,
                        "batch_build_host_seconds": build_host, "batch_build_device_seconds": build_device})
        rows.append({"data": f"{label} ({len(train):,} training rows)", "device": history.device, "host-built s / epoch": f"{host:.2f}",
                     "device-built s / epoch": f"{dev:.2f}", "host ÷ device": f"{host / dev:.2f}", "same losses": "yes" if same else "NO",
                     "batches alone, host ÷ device": f"{build_host:.3f} s ÷ {build_device:.3f} s = {build_host / build_device:.1f}"})
        print(rows[-1], flush=True)
    columns = ["data", "device", "host-built s / epoch", "device-built s / epoch", "host ÷ device", "same losses", "batches alone, host ÷ device"]
    write("speed_device_batches", {"model": "multvae", "epochs": epochs, "results": results}, markdown_table(rows, columns))


def main() -> None:
    from recsys_core.models import MODEL_NAMES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", help="comma-separated subset (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--device-batches", action="store_true", help="Mult-VAE s/epoch, host-built vs device-built batches")
    parser.add_argument("--default-fits", action="store_true", help="each model's default run (selection + refit + tests), timed")
    parser.add_argument("--threads-compare", action="store_true", help="one epoch with 1 and with 2 threads, interleaved")
    parser.add_argument("--threads", type=int, help="CPU threads of the fit (default: chosen by the trainer)")
    parser.add_argument("--one-default", help=argparse.SUPPRESS)
    args = parser.parse_args()
    models = args.models.split(",") if args.models else list(MODEL_NAMES)
    if args.device_batches:
        device_batches(args.epochs, args.device, args.data)
        return
    if args.one_default:
        print(json.dumps(measure_default_fit(args.one_default, args.device, args.data)))
        return
    if args.default_fits:
        default_fits(models, args.device, args.data)
        return
    if args.threads_compare:
        threads_compare(models, args.epochs, args.device, args.data)
        return
    if args.one:
        print(json.dumps(measure(args.one, args.epochs, args.device, args.data, args.threads)))
        return
    rows, results = [], []
    for name in models:
        threads = ["--threads", str(args.threads)] if args.threads else []
        r = _child("--one", name, "--epochs", str(args.epochs), "--device", args.device, "--data", args.data, *threads)
        if r is None:
            continue
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
