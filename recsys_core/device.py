"""Where tensors live and in which precision: the one place that knows about CUDA.

``resolve_device`` turns the user's choice ("auto", "cpu", "cuda", "cuda:1") into a
``torch.device`` and refuses a GPU that is not there with a message and a way out;
``device_description`` is the name a run records and the app shows; ``autocast`` is the mixed
precision rule (bf16 on CUDA when enabled, nothing on the CPU, where bf16 is slower and changes
results); ``choose_threads`` and ``thread_limit`` decide and apply how many CPU threads a fit uses. The trainer resolves the device once and hands it to the model in its
:class:`~recsys_core.fit_context.FitContext`; a loaded model gets it from ``from_state``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from .errors import ModelError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; a clear error when CUDA is asked for but absent."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was requested but no CUDA GPU is available", "Use --device auto or --device cpu.")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ModelError(f"unknown device {device!r}", "Use auto, cpu or cuda.")
    return torch.device(device)


def device_description(device: torch.device) -> str:
    """``cpu`` or ``cuda (<GPU name>)``: what a run records as its device."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"


def autocast(device: torch.device, mixed_precision: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``mixed_precision`` is on; a no-op on the CPU."""
    if mixed_precision and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------- threads


def usable_cores() -> int:
    """Physical cores this process may run on: its CPU affinity, with hyper-thread siblings counted once."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topology.joinpath("physical_package_id").read_text().strip(), topology.joinpath("core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))


def choose_threads(requested: int | None = None, wide_steps: bool = True) -> int:
    """Threads for torch's (and BLAS's) work: ``requested`` when given, else one per physical core
    this process may use, and one for models whose steps are narrow (embedding lookups and
    element-wise products).

    Why one for narrow steps: a parallel operation waits for its slowest thread, and on a machine
    where other programs hold the cores a thread that shares its core stalls every tiny operation:
    on this 2-core machine under load (about 5 runnable tasks) two threads made a GMF epoch 20× slower
    than one (6 s against 117–156 s), while on a quiet machine the second thread gained nothing.

    Why not fewer when the machine is busy: the thread count changes how sums are split, so a fit on
    one thread and the same fit on two differ in the last digits, and the difference grows over
    epochs. A seeded run must give the same result every time on the same machine, so the choice
    depends on the machine and the model, never on the load of the moment. Where other work holds
    the cores, ``--threads 1`` (the Train page's "CPU threads") avoids the slowdown for the wide
    models too (Mult-VAE 2×, SVAE 4–6× slower on two threads at load 5–7; ``benchmarks/speed.py --threads-compare``).
    """
    if requested is not None:
        if requested < 1:
            raise ModelError(f"threads={requested} must be at least 1", "Give a positive number, or leave it out to choose automatically.")
        return int(requested)
    return usable_cores() if wide_steps else 1


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Run a block with torch and the BLAS libraries limited to ``threads``, restored afterwards."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)
