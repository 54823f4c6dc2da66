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
that needs less than an earlier one shows the earlier peak).

Models (``--model-sizes``, ``--models``): each model is fitted through the public trainer in its own
process on the split of that shape, with its default settings but for ``BENCHMARK_SETTINGS`` (NeuMF
without pretraining: its pretraining adds one GMF and one MLP epoch, both timed on their own rows;
EASE with one fixed λ: choosing λ repeats the solve and a validation pass for each of its 8 grid
values). AutoRec and DeepRec get 1-5 stars made up for the implicit synthetic rows. A closed-form model
(item-kNN, EASE) is fitted whole. A gradient model trains one epoch, or, with ``--max-steps N``, its
first N steps at the full shape (the same tables, data and batches; the memory is the real
thing), and its epoch is then extrapolated from the measured steps: the seconds to step N plus the
remaining steps at the steady rate of the steps after the first quarter. Each row says which. A
model whose process exceeds ``--model-timeout`` seconds is reported as not finished.

The memory table gives :func:`recsys_core.limits.estimate_memory` for every model with its default
settings at each shape, against the memory available here: what the app and CLI compare before a fit
starts, refusing with the estimate when it does not fit.

The fitted exponent b of time ≈ a · rows^b over the data sizes is printed per stage (b ≤ 1: at most
linear).

    python benchmarks/scale.py [--sizes 1m,5m,20m] [--model-sizes 1m] [--models bpr,gmf,neumf,multvae]
                               [--max-steps 3000] [--model-timeout 3600]
    python benchmarks/scale.py --optimizer-steps   # BPR steps: dense Adam against sparse + lazy Adam, by table size and batch
    python benchmarks/scale.py --user-path [--user-path-size 20m] [--user-path-format parquet] [--profile]

The whole user path (``--user-path``): one ``python -m recsys_core train --csv FILE --model pop``
process on the file of one shape, run through the CLI's own ``main`` in a fresh process with an empty
data home, every phase timed from inside (see :class:`PhaseTimer`): store the upload copy (sha256 +
atomic write), read, split, the validation and test candidates (99 sampled negatives per user), fit
and its validation pass, the refit on train + validation, both test passes (loo-sampled, loo-full),
the beyond-accuracy metrics and the save. Each phase gets its wall and CPU seconds and its own peak
RSS (the kernel's high-water mark is reset as the phase starts), and the load average is recorded
before and after. ``--profile`` also writes a cProfile of the process (``user_path_<size>.prof``) and
prints its top functions. Writes benchmarks/results/user_path_<size>.{json,md}.


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
from benchmarks._common import RESULTS, StepClock, markdown_table, run_child, write  # noqa: E402

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
        print(
            f"{size} {name}: {out['stages'][name]['seconds']:.1f} s, peak {out['stages'][name]['peak_rss_mb']:.0f} MB",
            file=sys.stderr,
            flush=True,
        )
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


# Settings that differ from a model's defaults here, and why (each row names them).
BENCHMARK_SETTINGS: dict[str, dict] = {
    "neumf": {"pretrain": False},  # its pretraining is one GMF and one MLP epoch: their own rows
    "ease": {"l2": 500.0},  # one solve; choosing λ repeats the solve and a validation pass per grid value (8)
}


def measure_model(size: str, model_name: str, max_steps: int = 0) -> dict:
    import dataclasses

    import numpy as np

    from recsys_core.datasets import UserFileOptions, read_user_file
    from recsys_core.errors import TrainingCancelled
    from recsys_core.models import create_model
    from recsys_core.splits import make_split
    from recsys_core.trainer import Trainer

    parquet, _ = data_files(size)
    data = read_user_file(parquet, UserFileOptions(user_col="user", item_col="item", timestamp_col="timestamp"))
    split = make_split(data, "loo-sampled", seed=0)
    before = _peak_mb()
    model = create_model(model_name, **BENCHMARK_SETTINGS.get(model_name, {}))
    train = split.train
    if model.predicts_ratings:  # the synthetic data is implicit: AutoRec and DeepRec get 1-5 stars of the same shape
        train = dataclasses.replace(train, rating=(1 + (train.user * 7 + train.item * 3) % 5).astype(np.float32))
    clock = StepClock(max_steps)
    out = {"size": size, "model": model_name, "rows": SHAPES[size]["n_interactions"], "iterative": model.iterative}
    try:
        history = Trainer(device="cpu", seed=0, epochs=1, patience=0).fit(model, train, validation=None, callback=clock.on_event)
        seconds = time.perf_counter() - clock.started
        epochs = [e["seconds"] for e in history.epochs if e.get("epoch")]
        out.update(
            fit_seconds=seconds, epoch_seconds=epochs[0] if epochs else seconds, measured="whole epoch" if model.iterative else "whole fit"
        )
    except TrainingCancelled:
        out.update(clock.extrapolated())
    out.update(peak_rss_mb=_peak_mb(), peak_rss_before_fit_mb=before)
    return out


def memory_estimates(size: str, models: list[str]) -> list[dict]:
    """:func:`estimate_memory` for each model's defaults at one shape, against the memory available here."""
    from recsys_core.limits import available_memory, estimate_memory
    from recsys_core.models import create_model

    shape, free = SHAPES[size], available_memory("cpu")
    rows = []
    for name in models:
        estimate = estimate_memory(name, shape["n_users"], shape["n_items"], shape["n_interactions"], create_model(name).config)
        rows.append(
            {
                "size": size,
                "model": name,
                "estimate_gib": estimate.total / 2**30,
                "available_gib": free / 2**30,
                "fits": estimate.total <= free,
                "dominant": estimate.dominant,
            }
        )
    return rows


def _child(args: list[str], timeout: float | None = None) -> dict | None:
    outcome = run_child([sys.executable, __file__, *args], timeout=timeout)
    if outcome.timed_out:
        print(f"{' '.join(args)}: {outcome.problem}", file=sys.stderr)
        return {"timed_out_after_seconds": timeout}
    sys.stderr.write(outcome.stderr[-4000:])
    return outcome.result


#: Table sizes (users, items) for the optimiser sweep: ml-100k's, ML-1M's, three between, ML-20M's.
OPTIMIZER_TABLES = ((943, 1_682), (6_040, 3_706), (20_000, 10_000), (50_000, 20_000), (138_493, 26_744))


def measure_optimizer_steps(steps: int = 30, batches: tuple[int, ...] = (256, 1024, 4096)) -> list[dict]:
    """CPU milliseconds per BPR step with dense Adam against sparse gradients + lazy Adam, through the
    real network (``BPRNetwork.triples``), loss and optimiser, over table sizes and batches, one thread,
    dense and sparse alternated twice (the faster of the two runs is kept): where the crossover lies
    (``recsys_core.models.optimizers.SPARSE_GRADIENT_MIN_ROWS``)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from recsys_core.models import create_model
    from recsys_core.models.base import LossModule
    from recsys_core.models.optimizers import use_sparse_gradients

    torch.set_num_threads(1)

    def bpr_loss(network, users, positives, negatives):
        x_ui, x_uj, squares = network.triples(users, positives, negatives)
        return F.softplus(x_uj - x_ui.unsqueeze(1)).mean() + 3e-3 * squares.mean()

    rows = []
    for batch in batches:
        for n_users, n_items in OPTIMIZER_TABLES:
            timings: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(2):
                for sparse in (False, True):
                    model = create_model("bpr")
                    model.n_users, model.n_items = n_users, n_items
                    model._build()
                    use_sparse_gradients(model.network, sparse)
                    model.step_module, model.optimizer = LossModule(model.network), model.make_optimizer()
                    rng = np.random.default_rng(0)
                    users = torch.from_numpy(rng.integers(0, n_users, (steps, batch)))
                    positives = torch.from_numpy(rng.integers(0, n_items, (steps, batch)))
                    negatives = torch.from_numpy(rng.integers(0, n_items, (steps, batch, 4)))
                    started = time.process_time()
                    for step in range(steps):
                        model.train_step(bpr_loss, model.network, users[step], positives[step], negatives[step])
                    timings[sparse].append((time.process_time() - started) / steps * 1000)
            dense, sparse = min(timings[False]), min(timings[True])
            rows.append({"batch": batch, "users": n_users, "items": n_items, "dense_ms": dense, "sparse_ms": sparse, "ratio": dense / sparse})
            print(f"batch {batch}, {n_users + n_items:,} rows: dense {dense:.1f} ms, sparse {sparse:.1f} ms per step", file=sys.stderr, flush=True)
    return rows


# ------------------------------------------------------------------------------ the whole user path
def _vm_kib(field: str) -> int:
    """One ``Vm*`` line of /proc/self/status in KiB (0 where the platform has none)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process (Linux ≥ 4.0); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class PhaseTimer:
    """Wall and CPU seconds and the peak RSS of every phase of one process, phases nested.

    :meth:`wrap` replaces a function or method with a timed one; a call made while another timed call
    runs is a nested phase (shown indented, its time inside its parent's). Repeated calls at the same
    place (the same path of phase names) add up into one row with a call count. Each phase's peak is
    its own: the kernel's high-water mark is reset when a phase starts and read when it ends (the
    parents keep the larger of their own and their children's peaks).
    """

    def __init__(self) -> None:
        self.rows: dict[tuple[str, ...], dict] = {}
        self.stack: list[dict] = []
        self.per_phase_peak = _reset_peak_rss()

    def _enter(self, name: str) -> dict:
        mark = _vm_kib("VmHWM")
        for frame in self.stack:
            frame["peak"] = max(frame["peak"], mark)
        path = (self.stack[-1]["path"] if self.stack else ()) + (name,)
        self.rows.setdefault(
            path, {"phase": name, "depth": len(self.stack), "seconds": 0.0, "cpu_seconds": 0.0, "calls": 0, "peak_rss_mb": 0.0}
        )
        if self.per_phase_peak:
            _reset_peak_rss()
        frame = {"path": path, "wall": time.perf_counter(), "cpu": time.process_time(), "peak": _vm_kib("VmRSS")}
        self.stack.append(frame)
        return frame

    def _leave(self, frame: dict) -> None:
        frame["peak"] = max(frame["peak"], _vm_kib("VmHWM"))
        self.stack.pop()
        if self.stack:
            self.stack[-1]["peak"] = max(self.stack[-1]["peak"], frame["peak"])
        row = self.rows[frame["path"]]
        row["seconds"] += time.perf_counter() - frame["wall"]
        row["cpu_seconds"] += time.process_time() - frame["cpu"]
        row["calls"] += 1
        row["peak_rss_mb"] = max(row["peak_rss_mb"], frame["peak"] / 1024)
        row["rss_after_mb"] = _vm_kib("VmRSS") / 1024

    def wrap(self, owner: object, attribute: str, name) -> None:
        """Time ``owner.attribute`` as phase ``name`` (a string, or a function of the call's arguments giving one)."""
        import functools

        original = getattr(owner, attribute)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            frame = self._enter(name(*args, **kwargs) if callable(name) else name)
            try:
                return original(*args, **kwargs)
            finally:
                self._leave(frame)

        setattr(owner, attribute, timed)

    def table(self) -> list[dict]:
        return list(self.rows.values())


def _timed_phases(timer: PhaseTimer) -> None:
    """Wrap the functions the CLI's ``train --csv`` calls, by the names it looks them up under."""
    import recsys_core.beyond as beyond
    import recsys_core.datasets as datasets
    import recsys_core.evaluation as evaluation
    import recsys_core.experiment as experiment
    import recsys_core.limits as limits
    import recsys_core.runs as runs
    from recsys_core.interactions import Interactions
    from recsys_core.splits import Split
    from recsys_core.trainer import Trainer

    fits = iter(("fit (model selected on validation)", "refit (train + validation)"))
    timer.wrap(datasets, "read_user_file", "read the file")
    timer.wrap(datasets, "store_user_file", "store the upload copy (sha256 + atomic write)")
    timer.wrap(limits, "check_protocol_data", "protocol data check")
    timer.wrap(limits, "check_memory", "memory check")
    timer.wrap(experiment, "make_split", "split")
    timer.wrap(Trainer, "fit", lambda *a, **k: next(fits, "fit"))
    timer.wrap(Split, "train_with_validation", "train + validation rows")
    timer.wrap(Split, "all_positives", "all positives (csr)")
    timer.wrap(
        evaluation.Evaluator,
        "__init__",
        lambda self, split, part="test", protocol="loo-sampled", *a, **k: f"{part} {protocol}: set up (candidates)",
    )
    timer.wrap(evaluation.Evaluator, "evaluate", lambda self, *a, **k: f"{self.part} {self.protocol}: score, rank, intervals")
    timer.wrap(evaluation, "sample_eval_negatives", "sample 99 negatives per user")
    timer.wrap(evaluation, "check_negatives", "check the negatives")
    for module in (evaluation, beyond):
        timer.wrap(module, "bootstrap_intervals", "bootstrap intervals")
    timer.wrap(experiment, "beyond_accuracy_record", "beyond-accuracy metrics")
    timer.wrap(beyond, "top_k_lists", "top-10 lists over the full catalogue")
    timer.wrap(beyond.TopKLists, "add", "beyond-accuracy top-10 lists from the same blocks")
    timer.wrap(beyond, "_bootstrap_set_metrics", "coverage / Gini intervals")
    timer.wrap(Interactions, "content_hash", "content hash")
    timer.wrap(Interactions, "to_csr", "interactions to csr")
    timer.wrap(runs, "save_run", "save the run")
    timer.wrap(runs, "save_model", "model (safetensors)")
    timer.wrap(runs, "save_seen", "seen items (safetensors)")


def user_path_one(path: str, profile: str | None = None) -> dict:
    """One ``train --csv`` process through the CLI's ``main``, its phases timed (run in a fresh process)."""
    import os

    started, cpu_started = time.perf_counter(), time.process_time()
    load_before = os.getloadavg()
    timer = PhaseTimer()
    frame = timer._enter("import (recsys_core, numpy, pandas, torch)")
    from recsys_core import cli, experiment  # noqa: F401  (imported here, not inside the timed train)

    timer._leave(frame)
    _timed_phases(timer)
    argv = [
        "train",
        "--csv",
        path,
        "--user-col",
        "user",
        "--item-col",
        "item",
        "--timestamp-col",
        "timestamp",
        "--model",
        "pop",
        "--device",
        "cpu",
        "--json",
    ]
    if profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU seconds: the machine may be shared
        code = profiler.runcall(cli.main, argv)
        profiler.dump_stats(profile)
    else:
        code = cli.main(argv)
    rows = timer.table()
    total = time.perf_counter() - started
    saved = _saved_run_results()
    accounted = sum(r["seconds"] for r in rows if r["depth"] == 0)
    return {
        "file": path, "argv": argv, "exit_code": code, "total_seconds": total, "cpu_seconds": time.process_time() - cpu_started,
        "untimed_seconds": total - accounted, "peak_rss_mb": max([r["peak_rss_mb"] for r in rows] + [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]),
        "per_phase_peak": timer.per_phase_peak, "load_before": load_before, "load_after": os.getloadavg(), "phases": rows,
        "saved_run": saved,
    }  # fmt: skip


def _saved_run_results() -> dict:
    """What the run saved that a speed-up must not change: every result in run.json and the sha256 of
    each per-user evaluation file (compared between runs of the same seed before and after a change)."""
    import hashlib

    from recsys_core.home import runs_dir

    folders = [f for f in runs_dir().iterdir() if f.is_dir() and not f.name.startswith(".")]
    if len(folders) != 1:
        return {}
    record = json.loads((folders[0] / "run.json").read_text())
    kept = {k: record.get(k) for k in ("metrics", "intervals", "test", "beyond", "validation", "split", "tuning")}
    kept["dataset"] = {k: record["dataset"].get(k) for k in ("content_hash", "stats")}
    kept["files"] = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folders[0].iterdir()) if f.name != "run.json"}
    return kept


def measure_user_path(size: str, file_format: str, profile: bool) -> dict:
    """``user_path_one`` in a fresh process with an empty data home (so the upload copy is really written)."""
    import os
    import shutil
    import tempfile

    parquet, csv = data_files(size)
    path = parquet if file_format == "parquet" else csv
    home = Path(tempfile.mkdtemp(prefix="user-path-home-", dir=RESULTS))
    prof = RESULTS / f"user_path_{size}_{file_format}.prof" if profile else None
    command = [sys.executable, __file__, "--user-path-one", str(path)] + (["--profile-to", str(prof)] if prof else [])
    try:
        out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "RECSYS_HOME": str(home)})
    finally:
        shutil.rmtree(home, ignore_errors=True)
    sys.stderr.write(out.stderr[-4000:])
    if out.returncode:
        raise SystemExit(f"the user path failed (exit {out.returncode})")
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    result["run_summary"] = json.loads(lines[-2])  # the CLI's own --json line
    result.update(size=size, format=file_format, rows=SHAPES[size]["n_interactions"])
    if prof:
        import pstats

        stats = pstats.Stats(str(prof), stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(25)
        result["profile"] = str(prof)
    return result


def user_path_table(result: dict) -> str:
    rows = [
        {"phase": "  " * r["depth"] + r["phase"] + (f" (×{r['calls']})" if r["calls"] > 1 else ""), "seconds": f"{r['seconds']:.1f}",
         "CPU s": f"{r['cpu_seconds']:.1f}", "peak RSS GiB": f"{r['peak_rss_mb'] / 1024:.2f}"}
        for r in result["phases"]
    ]  # fmt: skip
    rows.append({"phase": "untimed (argument parsing, records, printing)", "seconds": f"{result['untimed_seconds']:.1f}"})
    rows.append(
        {"phase": "**whole process**", "seconds": f"**{result['total_seconds']:.1f}**", "CPU s": f"{result['cpu_seconds']:.1f}",
         "peak RSS GiB": f"{result['peak_rss_mb'] / 1024:.2f}"}
    )  # fmt: skip
    load = f"load average (1 min) {result['load_before'][0]:.2f} before, {result['load_after'][0]:.2f} after, on {os_cpus()} CPUs"
    return f"{result['rows']:,} rows ({result['format']}), `train --csv ... --model pop`; {load}\n\n" + markdown_table(
        rows, ["phase", "seconds", "CPU s", "peak RSS GiB"]
    )


def os_cpus() -> int:
    import os

    return os.cpu_count() or 0


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
    parser.add_argument(
        "--max-steps", type=int, default=0, help="time only the first N steps of a gradient model's epoch (0: the whole epoch)"
    )
    parser.add_argument("--model-timeout", type=float, default=3600.0, help="seconds before a model's process is stopped")
    parser.add_argument(
        "--optimizer-steps", action="store_true", help="only time BPR steps with dense Adam against sparse gradients + lazy Adam"
    )
    parser.add_argument("--user-path", action="store_true", help="only time the whole `train --csv --model pop` process, phase by phase")
    parser.add_argument("--user-path-size", default="20m", choices=list(SHAPES), help="--user-path: the shape of the file (default 20m)")
    parser.add_argument(
        "--user-path-format", default="parquet", choices=("parquet", "csv"), help="--user-path: the file's format (default parquet)"
    )
    parser.add_argument("--profile", action="store_true", help="--user-path: also write and print a cProfile of the process")
    parser.add_argument("--user-path-one", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    parser.add_argument("--data-one", help=argparse.SUPPRESS)
    parser.add_argument("--model-one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.user_path_one:
        print(json.dumps(user_path_one(args.user_path_one, args.profile_to)))
        return
    if args.user_path:
        result = measure_user_path(args.user_path_size, args.user_path_format, args.profile)
        write(f"user_path_{args.user_path_size}_{args.user_path_format}", result, user_path_table(result))
        return
    if args.data_one:
        print(json.dumps(measure_data(args.data_one)))
        return
    if args.model_one:
        print(json.dumps(measure_model(*args.model_one, max_steps=args.max_steps)))
        return
    if args.optimizer_steps:
        rows = measure_optimizer_steps()
        shown = [
            {"batch": f"{r['batch']:,}", "tables (users × items)": f"{r['users']:,} × {r['items']:,} ({r['users'] + r['items']:,} rows)",
             "dense Adam ms / step": f"{r['dense_ms']:.1f}", "sparse + lazy Adam ms / step": f"{r['sparse_ms']:.1f}", "dense ÷ sparse": f"{r['ratio']:.2f}"}
            for r in rows
        ]  # fmt: skip
        write("scale_optimizer", {"steps": rows}, markdown_table(shown, list(shown[0])))
        return

    sizes = [s for s in args.sizes.split(",") if s]
    data_results = [r for r in (_child(["--data-one", size]) for size in sizes) if r]
    rows = []
    for r in data_results:
        row = {
            "shape": f"{r['size']} ({r['n_users']:,} × {r['n_items']:,}, {r['n_interactions']:,} rows)",
            "generate s": f"{r['generate_seconds']:.1f}",
        }
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

    models = [m for m in args.models.split(",") if m]
    model_results = []
    for size in [s for s in args.model_sizes.split(",") if s]:
        for name in models:
            r = _child(["--model-one", size, name, "--max-steps", str(args.max_steps)], timeout=args.model_timeout)
            if r is not None and "timed_out_after_seconds" in r:
                r = {"size": size, "model": name, "rows": SHAPES[size]["n_interactions"], **r}
            if r:
                model_results.append(r)
    model_rows = []
    for r in model_results:
        settings = BENCHMARK_SETTINGS.get(r["model"], {})
        name = r["model"] + (f" ({', '.join(f'{k}={v}' for k, v in settings.items())})" if settings else "")
        if "timed_out_after_seconds" in r:
            model_rows.append(
                {
                    "model": name,
                    "shape": r["size"],
                    "measured": f"not finished in {r['timed_out_after_seconds']:.0f} s",
                    "s / epoch (or fit)": "",
                    "peak RSS GiB": "",
                }
            )
            continue
        model_rows.append(
            {
                "model": name,
                "shape": r["size"],
                "measured": r["measured"],
                "s / epoch (or fit)": f"{r['epoch_seconds']:.1f}",
                "peak RSS GiB": f"{r['peak_rss_mb'] / 1024:.1f}",
            }
        )
    memory_rows = [row for size in [s for s in args.model_sizes.split(",") if s] for row in memory_estimates(size, models)]
    table = markdown_table(rows, ["shape", "generate s", *STAGES, "read+split+sample s"]) if rows else ""
    if model_rows:
        table += "\n\n" + markdown_table(model_rows, list(model_rows[0]))
    if memory_rows:
        shown = [
            {"model": m["model"], "shape": m["size"], "estimated peak GiB": f"{m['estimate_gib']:.1f}", "available here GiB": f"{m['available_gib']:.1f}",
             "fits": "yes" if m["fits"] else "no: refused with this estimate", "dominant": m["dominant"]}
            for m in memory_rows
        ]  # fmt: skip
        table += "\n\n" + markdown_table(shown, list(shown[0]))
    write("scale", {"data": data_results, "exponents": exponents, "models": model_results, "memory": memory_rows}, table)


if __name__ == "__main__":
    main()
