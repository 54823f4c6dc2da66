"""Sparse rows kept on the model's device, densified there one batch at a time.

The autoencoders read a user's (or an item's) whole row as a dense vector. Slicing a scipy CSR on
the host for every batch, densifying it there and copying the dense block to the device starves a
GPU: the host does the gather, and the copy is users × items floats instead of the few stored
entries. :class:`DeviceCSR` keeps the three CSR arrays (``indptr``, ``indices``, ``data``) as
tensors on the device, built once per fit (or once per scored batch of arbitrary history rows), and
:meth:`DeviceCSR.dense_rows` turns a tensor of row numbers into the dense batch with tensor
arithmetic only: each requested row's span of stored entries is found from ``indptr``, the spans
are concatenated with ``repeat_interleave`` / ``cumsum`` offsets, and one ``index_put_`` writes
them into a zero block. No Python loop runs over rows or entries, and nothing crosses to the host.

The matrix is put in canonical form (sorted, duplicates summed, as ``toarray`` would sum them)
when it is built, so the scatter never writes one cell twice and the dense rows are exactly
``matrix[rows].toarray()`` in float32: seeded training and scores are the same bytes as the host
path they replace.

:meth:`DeviceCSR.padded_rows` reads the same structure as sequences (SVAE keeps each user's items
in time order as CSR-style ``items`` / ``indptr``): the latest ``max_length`` entries of each row,
right-padded, again without leaving the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch


@dataclass(frozen=True)
class DeviceCSR:
    """A CSR matrix whose arrays live on ``indptr.device`` (see the module docstring)."""

    indptr: torch.Tensor
    """int64, ``n_rows + 1`` offsets into ``indices`` / ``data``."""
    indices: torch.Tensor
    """int64 column of each stored entry, sorted within a row (for a canonical matrix)."""
    data: torch.Tensor
    """float32 value of each stored entry."""
    n_columns: int

    @classmethod
    def from_scipy(cls, matrix: sp.spmatrix, device: torch.device) -> DeviceCSR:
        """Copy ``matrix`` (any scipy sparse format) to ``device`` in canonical form, values as float32."""
        matrix = sp.csr_matrix(matrix)
        if not matrix.has_canonical_format:
            matrix = matrix.copy()
            matrix.sum_duplicates()  # what toarray() does with repeated (row, column) entries
        return cls(
            indptr=torch.from_numpy(matrix.indptr.astype(np.int64)).to(device),
            indices=torch.from_numpy(matrix.indices.astype(np.int64)).to(device),
            data=torch.from_numpy(matrix.data.astype(np.float32)).to(device),
            n_columns=int(matrix.shape[1]),
        )

    @classmethod
    def from_arrays(cls, indptr: np.ndarray, indices: np.ndarray, n_columns: int, device: torch.device) -> DeviceCSR:
        """Rows given as CSR-style ``(indices, indptr)`` in their own order (e.g. time-ordered
        sequences), every value 1; the order within a row is kept as it is."""
        indices_t = torch.from_numpy(np.asarray(indices, dtype=np.int64)).to(device)
        return cls(
            indptr=torch.from_numpy(np.asarray(indptr, dtype=np.int64)).to(device),
            indices=indices_t,
            data=torch.ones(len(indices_t), dtype=torch.float32, device=device),
            n_columns=int(n_columns),
        )

    @property
    def device(self) -> torch.device:
        return self.indptr.device

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def _lengths(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(rows, dtype=torch.long).to(self.device)
        starts = self.indptr[rows]
        return rows, starts, self.indptr[rows + 1] - starts

    def entries(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For the stored entries of ``rows`` (in that order, each row's entries in stored order):
        the position in ``rows`` each belongs to, and its index into ``indices`` / ``data``."""
        rows, starts, counts = self._lengths(rows)
        owner = torch.repeat_interleave(torch.arange(len(rows), device=self.device), counts)
        # entry j of the concatenation is entry (j - first[owner]) of its row, i.e. starts[owner] + that
        first = torch.cumsum(counts, 0) - counts
        source = torch.arange(len(owner), device=self.device) + (starts - first)[owner]
        return owner, source

    def dense_rows(self, rows: torch.Tensor, binary: bool = False) -> torch.Tensor:
        """``matrix[rows].toarray()`` as float32 on the device; ``rows`` may repeat and come in any
        order. ``binary``: 1 at every stored entry instead of its value (the sparsity pattern)."""
        owner, source = self.entries(rows)
        dense = torch.zeros((len(rows), self.n_columns), dtype=torch.float32, device=self.device)
        values = torch.ones(len(source), dtype=torch.float32, device=self.device) if binary else self.data[source]
        dense.index_put_((owner, self.indices[source]), values)  # canonical: no cell is written twice
        return dense

    def dense(self, binary: bool = False) -> torch.Tensor:
        """Every row densified (for a matrix that is itself one batch, e.g. the rows being scored)."""
        return self.dense_rows(torch.arange(self.n_rows, device=self.device), binary)

    def padded_rows(self, rows: torch.Tensor, max_length: int, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The latest ``max_length`` stored column indices of each of ``rows``, right-padded with
        ``pad`` to the longest kept length (at least 1), and the kept lengths: the device twin of
        :func:`recsys_core.models.svae.pad_sequences`."""
        rows, starts, lengths = self._lengths(rows)
        kept = torch.clamp(lengths, max=max_length)
        first = starts + lengths - kept
        width = max(1, int(kept.max())) if len(kept) else 1
        position = torch.arange(width, device=self.device)
        inside = position[None, :] < kept[:, None]
        if len(self.indices) == 0:
            return torch.full((len(rows), width), pad, dtype=torch.long, device=self.device), kept
        index = torch.clamp(first[:, None] + position[None, :], max=len(self.indices) - 1)
        padded = torch.where(inside, self.indices[index], torch.full_like(index, pad))
        return padded, kept
