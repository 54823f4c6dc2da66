"""Data-parallel training across processes with PyTorch's own distributed engine (``torchrun``).

    torchrun --nproc_per_node=N -m recsys_core train ... --distributed

Every rank holds the whole model and the whole training data (index arrays, small next to the
model at MovieLens sizes) and draws the same seeded permutation of the training examples each
epoch; rank r then trains on its shard ``order[r::world_size]``, cut to a common length so every
rank takes the same number of steps. Each training step goes through
``torch.nn.parallel.DistributedDataParallel`` (:func:`data_parallel`): the wrapper broadcasts rank
0's parameters when it is built and averages the gradients over the ranks during the backward pass.
The models compute their losses from several network methods (``user_vectors``, ``item_features``,
``encode``...), so what DDP wraps is the network with the step's loss as its ``forward``
(:class:`~recsys_core.models.base.LossModule`): every parameter a step uses is used inside DDP's
``forward``, which is all DDP needs.

Embedding tables: in one process their gradients are sparse (only the rows a batch touched,
:mod:`recsys_core.models.optimizers`, updated by lazy Adam). Under torchrun they are dense and plain
Adam updates them (:func:`sparse_gradients_supported`): NCCL cannot all-reduce sparse tensors, and
DDP's sparse path on gloo corrupted the heap in one run of three here. On GPUs the dense update is
cheap; on CPU ranks it costs a pass over the tables per step, as before sparse gradients.

Learning rate and batch: ``batch_size`` stays per rank, so one step sees ``world_size × batch_size``
examples and an epoch takes ``1 / world_size`` as many steps. The learning rate is left as configured
(Adam is insensitive to the batch scale; for SGD-like tuning scale it by ``world_size`` yourself with
``--set learning_rate=...``).

Every rank evaluates the validation split (the parameters are identical, so every rank makes the same
early-stopping decision); only rank 0 tests, saves the run and prints. Backend: ``nccl`` when CUDA is
used, else ``gloo``. A rank that fails makes the collectives of the others fail (``torchrun`` then
stops the group); the command line reports it as a :class:`DistributedError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import numpy as np

from .errors import RecsysError

Backend = Literal["gloo", "nccl"]


class DistributedError(RecsysError):
    """Distributed training could not start, or a rank failed."""


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    backend: Backend

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_CONTEXT: DistributedContext | None = None


def current() -> DistributedContext | None:
    """The active context, or None when training in one process."""
    return _CONTEXT


def init_from_environment(device: str = "auto", timeout_seconds: float = 300.0) -> DistributedContext:
    """Join the process group ``torchrun`` describes in RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT."""
    global _CONTEXT
    missing = [name for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise DistributedError(
            f"--distributed needs the environment torchrun sets ({', '.join(missing)} missing)",
            "Launch with: torchrun --nproc_per_node=2 -m recsys_core train ... --distributed",
        )
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    backend: Backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_seconds))
    except (RuntimeError, ValueError) as error:
        raise DistributedError(f"could not join the process group ({backend}): {error}", "Check MASTER_ADDR/MASTER_PORT or --rdzv-endpoint.") from None
    _CONTEXT = DistributedContext(dist.get_rank(), dist.get_world_size(), local_rank, backend)
    return _CONTEXT


def shutdown() -> None:
    global _CONTEXT
    if _CONTEXT is not None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        _CONTEXT = None


def device_for_rank(device: str) -> str:
    """On CUDA each rank uses its own GPU (LOCAL_RANK); on the CPU the device is unchanged."""
    context = current()
    if context is not None and context.backend == "nccl" and device in ("auto", "cuda"):
        return f"cuda:{context.local_rank}"
    return device


def shard(order: np.ndarray) -> np.ndarray:
    """This rank's share of a permutation every rank drew alike: ``order[rank::world]``, equal lengths."""
    context = current()
    if context is None or context.world_size == 1:
        return order
    per_rank = len(order) // context.world_size
    if per_rank == 0:
        raise DistributedError(f"{len(order)} training examples cannot be shared by {context.world_size} ranks")
    return order[context.rank :: context.world_size][:per_rank]


def sparse_gradients_supported() -> bool:
    """Whether embedding tables may take sparse gradients: in one process only.

    NCCL cannot all-reduce sparse tensors, and DDP's sparse-gradient path on gloo crashed one run in
    three here (heap corruption, torch 2.13, even with one rank), so under torchrun the tables take
    dense gradients, which DDP all-reduces in its ordinary buckets."""
    return current() is None


def data_parallel(module):
    """``module`` wrapped in ``DistributedDataParallel`` under torchrun, unchanged in one process.

    The wrapper broadcasts rank 0's parameters and buffers when built (every rank starts alike) and
    averages the gradients over the ranks in the backward pass of every call made through it.
    """
    context = current()
    if context is None:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [context.local_rank] if context.backend == "nccl" else None
    try:
        return DistributedDataParallel(module, device_ids=device_ids)
    except RuntimeError as error:
        raise DistributedError(f"rank {context.rank}: could not start data-parallel training ({error})", "See the other ranks' errors above.") from None


def rank_failed(error: RuntimeError) -> DistributedError:
    """The error a rank raises when a collective fails mid-training (another rank stopped)."""
    context = current()
    rank = context.rank if context is not None else 0
    return DistributedError(f"rank {rank}: another rank stopped during training ({error})", "See that rank's error above.")
