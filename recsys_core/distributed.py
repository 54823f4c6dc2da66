"""Data-parallel training across processes with PyTorch's own distributed engine (``torchrun``).

    torchrun --nproc_per_node=N -m recsys_core train ... --distributed

Every rank holds the whole model and the whole training data (index arrays, small next to the
model at MovieLens sizes) and draws the same seeded permutation of the training examples each
epoch; rank r then trains on its shard ``order[r::world_size]``, cut to a common length so every
rank takes the same number of steps. After each backward pass the gradients are averaged over the
ranks with one all-reduce of a flat buffer, which is what ``DistributedDataParallel`` does; the
wrapper itself is not used because the models call their networks' methods (``user_vectors``,
``item_features``...) rather than ``forward``, and DDP only synchronises through ``forward``. Every
rank starts from rank 0's parameters (a broadcast after the model is built).

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


def broadcast_parameters(module) -> None:
    """Every rank starts from rank 0's parameters and buffers."""
    context = current()
    if context is None or context.world_size == 1 or module is None:
        return
    import torch.distributed as dist

    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(module) -> None:
    """Average the gradients of ``module`` over the ranks with one all-reduce of a flat buffer."""
    context = current()
    if context is None or context.world_size == 1:
        return
    import torch
    import torch.distributed as dist

    parameters = [p for p in module.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    try:
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    except RuntimeError as error:
        raise DistributedError(f"rank {context.rank}: another rank stopped during training ({error})", "See that rank's error above.") from None
    flat /= context.world_size
    offset = 0
    for parameter, grad in zip(parameters, grads):
        size = grad.numel()
        parameter.grad = flat[offset : offset + size].view_as(grad).clone()
        offset += size
