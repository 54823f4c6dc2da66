"""Per-epoch seconds and peak memory of the heavy models on a GPU, with the CPU beside them.

For NeuMF (without pretraining: its pretraining is one GMF and one MLP epoch), Mult-VAE, SVAE, BPR
and iALS, at ml-100k and at the ML-20M shape (synthetic data from ``recsys_core.datasets.synthetic``,
as ``python -m recsys_core generate`` writes it): one epoch through the public trainer, or its first
``--max-steps`` steps extrapolated to the epoch (the seconds to step N plus the remaining steps at the
rate after the first quarter, as ``benchmarks/scale.py`` does). Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA and the process's peak RSS on the CPU. Every
(model, shape, device) runs in its own process so its peak is its own; a run past
``--model-timeout`` is reported as not finished, and the script stops starting runs once
``--budget`` seconds have passed, so the whole fits a lent machine's few minutes.

    bash benchmarks/gpu.sh                     # what a lent GPU machine runs (under ten minutes)
    python benchmarks/gpu.py [--devices cuda,cpu] [--shapes ml-100k,20m] [--models neumf,multvae] [--max-steps 200]

Writes benchmarks/results/gpu.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import StepClock, markdown_table, run_child, write  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
MODELS = ("neumf", "multvae", "svae", "bpr", "ials")
SETTINGS = {"neumf": {"pretrain": False}}
ML20M = {"n_users": 138_493, "n_items": 26_744, "n_interactions": 20_000_263}


def _train_split(shape: str, data_path: str):
    from recsys_core.datasets import read_ml100k
    from recsys_core.datasets.synthetic import generate_synthetic
    from recsys_core.interactions import Interactions
    from recsys_core.splits import leave_one_out

    if shape == "ml-100k":
        data = read_ml100k(data_path)
    else:
        frame = generate_synthetic(**ML20M, seed=0).frame
        data = Interactions.from_frame(frame, "user", "item", timestamp_col="timestamp", name="synthetic-20m")
    return leave_one_out(data).train


def measure(model_name: str, shape: str, device: str, max_steps: int, data_path: str) -> dict:
    import torch

    from recsys_core.errors import TrainingCancelled
    from recsys_core.models import create_model
    from recsys_core.trainer import Trainer

    train = _train_split(shape, data_path)
    model = create_model(model_name, **SETTINGS.get(model_name, {}))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    clock = StepClock(max_steps)
    out = {"model": model_name, "shape": shape, "device": device}
    try:
        history = Trainer(device=device, seed=0, epochs=2 if shape == "ml-100k" else 1, patience=0).fit(model, train, callback=clock.on_event)
        epochs = [e["seconds"] for e in history.epochs if e.get("epoch")]
        out.update(epoch_seconds=epochs[-1] if epochs else time.perf_counter() - clock.started, measured="whole epoch", device_name=history.device)
    except TrainingCancelled:
        out.update(clock.extrapolated())
    if device == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        out["peak_memory_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="cuda,cpu")
    parser.add_argument("--shapes", default="ml-100k,20m")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--max-steps", type=int, default=200, help="at the 20M shape, time this many steps and extrapolate (0: whole epochs)")
    parser.add_argument("--model-timeout", type=float, default=240.0)
    parser.add_argument("--budget", type=float, default=540.0, help="start no run after this many seconds")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        model, shape, device = args.one
        print(json.dumps(measure(model, shape, device, args.max_steps if shape != "ml-100k" else 0, args.data)))
        return
    began = time.perf_counter()
    results = []
    for shape in args.shapes.split(","):
        for model in args.models.split(","):
            for device in args.devices.split(","):
                if time.perf_counter() - began > args.budget:
                    results.append({"model": model, "shape": shape, "device": device, "measured": "not run: out of time"})
                    continue
                command = [sys.executable, __file__, "--one", model, shape, device, "--max-steps", str(args.max_steps), "--data", args.data]
                outcome = run_child(command, timeout=args.model_timeout)
                if outcome.result is None:
                    measured = f"not finished in {args.model_timeout:.0f} s" if outcome.timed_out else f"failed: {outcome.problem[:200]}"
                    results.append({"model": model, "shape": shape, "device": device, "measured": measured})
                    continue
                results.append(outcome.result)
                print(results[-1], flush=True)
    rows = [
        {"model": r["model"] + (" (no pretraining)" if r["model"] == "neumf" else ""), "shape": r["shape"], "device": r.get("device_name", r["device"]),
         "s / epoch": f"{r['epoch_seconds']:.2f}" if "epoch_seconds" in r else "—", "measured": r["measured"],
         "peak memory GiB": f"{r['peak_memory_gib']:.2f}" if "peak_memory_gib" in r else "—"}
        for r in results
    ]  # fmt: skip
    write("gpu", {"results": results}, markdown_table(rows, ["model", "shape", "device", "s / epoch", "measured", "peak memory GiB"]))


if __name__ == "__main__":
    main()
