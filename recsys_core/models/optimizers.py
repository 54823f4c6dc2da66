"""Optimisers for networks with embedding tables: only the rows a batch touched are updated.

A user-embedding table at MovieLens-20M size holds 138,493 rows; a batch of 256 examples touches a
few hundred of them. Dense Adam would still read and write every row of every table (and both of its
moments) at every step: 33 ms a step for BPR's tables at the 20M shape on this 2-core machine against
5 ms with sparse gradients, and BPR's epoch at that shape had not finished after 20 minutes; with
them it takes 650 s (``benchmarks/scale.py``). With sparse gradients (``nn.Embedding(sparse=True)``)
the tables are updated by ``torch.optim.SparseAdam``, the "lazy" Adam of recommender libraries: a
row's moments and value change only on the steps that use it. Every other parameter (towers, output
layers) keeps ordinary Adam or SGD. On ml-100k the models' test metrics moved within their
intervals (README, Results).

Weight decay never runs over a whole table: the models add their L2 penalty for the rows a batch
uses to the loss (Rendle et al.'s per-triple regulariser for BPR), and only the dense parameters
take the optimiser's own decay.

Small tables take dense gradients and ordinary (fused) Adam: below
:data:`SPARSE_GRADIENT_MIN_ROWS` users + items a dense step is cheaper than a sparse one, since a
sparse gradient must be coalesced (its rows sorted and summed) before lazy Adam reads it, while
dense Adam's pass over a small table costs little. Measured per BPR step, one thread, 4 negatives
(``benchmarks/scale.py --optimizer-steps``): at ml-100k's 2,625 rows dense is 1.4–1.8× faster at
batches of 256 to 4,096; sparse wins from about 20,000 rows at a batch of 256 and from about
50,000 at 1,024–2,048 (the models' batches); at ML-20M's 165,237 rows sparse is 3–7× faster.

Under torchrun the tables take dense gradients (see
:func:`recsys_core.distributed.sparse_gradients_supported`), and the same functions return plain
Adam / SGD for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn


def embedding_tables(network: nn.Module) -> list[nn.Embedding]:
    return [module for module in network.modules() if isinstance(module, nn.Embedding)]


SPARSE_GRADIENT_MIN_ROWS = 50_000
"""Users + items from which embedding tables take sparse gradients and lazy Adam (see above)."""


def prefers_sparse_gradients(n_users: int, n_items: int) -> bool:
    """Whether tables of this many users and items train faster on sparse gradients (one process)."""
    return n_users + n_items >= SPARSE_GRADIENT_MIN_ROWS


def use_sparse_gradients(network: nn.Module, sparse: bool) -> None:
    """Make every embedding table of ``network`` produce sparse (True) or dense gradients."""
    for table in embedding_tables(network):
        table.sparse = sparse


def _split(network: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter], list[nn.Parameter]]:
    """(sparse tables, dense tables, every other parameter), each parameter once."""
    sparse, dense_tables, tables_seen = [], [], set()
    for table in embedding_tables(network):
        for parameter in table.parameters(recurse=False):
            if id(parameter) not in tables_seen:
                tables_seen.add(id(parameter))
                (sparse if table.sparse else dense_tables).append(parameter)
    others = [p for p in network.parameters() if id(p) not in tables_seen]
    return sparse, dense_tables, others


class Optimizers:
    """Several optimisers stepped as one (SparseAdam for sparse tables, Adam or SGD for the rest)."""

    def __init__(self, parts: Iterable[torch.optim.Optimizer | None]):
        self.parts = [part for part in parts if part is not None]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for part in self.parts:
            part.step()

    def __repr__(self) -> str:
        return f"Optimizers({', '.join(type(part).__name__ for part in self.parts)})"


def embedding_optimizer(
    network: nn.Module, kind: Literal["adam", "sgd"], learning_rate: float, weight_decay: float = 0.0
) -> Optimizers:
    """The optimiser of a network with embedding tables.

    Sparse tables: ``SparseAdam`` (kind "adam") or plain SGD, without decay. Dense tables (NCCL):
    Adam or SGD without decay. Every other parameter: Adam (the fused kernel on the CPU) or SGD
    with ``weight_decay`` as the L2 term of its gradient.
    """
    sparse, dense_tables, others = _split(network)
    parts: list[torch.optim.Optimizer | None] = []
    if kind == "adam":
        parts.append(torch.optim.SparseAdam(sparse, lr=learning_rate) if sparse else None)
        groups = [{"params": dense_tables, "weight_decay": 0.0}, {"params": others, "weight_decay": weight_decay}]
        groups = [group for group in groups if group["params"]]
        # The fused kernel is about a quarter faster per step on the CPU and computes the same update.
        parts.append(torch.optim.Adam(groups, lr=learning_rate, fused=True) if groups else None)
    else:
        # SGD takes sparse gradients itself; the tables are left out of its decay like Adam's.
        groups = [{"params": sparse + dense_tables, "weight_decay": 0.0}, {"params": others, "weight_decay": weight_decay}]
        groups = [group for group in groups if group["params"]]
        parts.append(torch.optim.SGD(groups, lr=learning_rate) if groups else None)
    return Optimizers(parts)
