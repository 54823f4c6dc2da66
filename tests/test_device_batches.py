"""Training batches built on the model's device: DeviceCSR's gathers against scipy, the autoencoders
training without a host-side densify per batch, and FitContext.device_batches drawing the same
permutation as FitContext.batches."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from model_contract import checkerboard

import recsys_core.models.base as base
from recsys_core.fit_context import FitContext
from recsys_core.models import create_model
from recsys_core.models.device_csr import DeviceCSR
from recsys_core.models.svae import pad_sequences
from recsys_core.trainer import Trainer

CPU = torch.device("cpu")


def random_csr(rng: np.random.Generator, n_rows: int, n_columns: int, density: float, binary: bool) -> sp.csr_matrix:
    """A canonical random CSR with some rows left empty on purpose."""
    matrix = sp.random(n_rows, n_columns, density=density, format="csr", random_state=rng, dtype=np.float32)
    matrix = matrix.tolil()
    for row in rng.choice(n_rows, size=max(1, n_rows // 4), replace=False):
        matrix[row, :] = 0
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    if binary:
        matrix.data[:] = 1.0
    else:
        matrix.data = (rng.normal(size=matrix.nnz) * 3).astype(np.float32)
    return matrix


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("shape,density", [((40, 30), 0.15), ((7, 200), 0.02), ((60, 5), 0.6)])
def test_dense_rows_equals_scipy_toarray(binary, shape, density):
    rng = np.random.default_rng(hash((binary, shape)) % 2**32)
    matrix = random_csr(rng, *shape, density, binary)
    assert (np.diff(matrix.indptr) == 0).any(), "the fixture must contain empty rows"
    device_csr = DeviceCSR.from_scipy(matrix, CPU)
    empty = np.flatnonzero(np.diff(matrix.indptr) == 0)
    cases = [
        np.arange(shape[0]),  # every row in order
        rng.permutation(shape[0]),  # out of order
        rng.integers(0, shape[0], size=3 * shape[0]),  # repeated rows
        empty[:3],  # only empty rows
        np.zeros(0, dtype=np.int64),  # no rows at all
    ]
    for rows in cases:
        got = device_csr.dense_rows(torch.as_tensor(rows))
        assert got.dtype == torch.float32 and got.shape == (len(rows), shape[1])
        np.testing.assert_array_equal(got.numpy(), matrix[rows].toarray())
        pattern = device_csr.dense_rows(torch.as_tensor(rows), binary=True).numpy()
        np.testing.assert_array_equal(pattern, (matrix[rows] != 0).toarray().astype(np.float32))
    np.testing.assert_array_equal(device_csr.dense().numpy(), matrix.toarray())


def test_dense_rows_keeps_explicit_zeros_in_the_pattern_and_sums_duplicates_like_toarray():
    # a rating of 0 is still a stored (rated) entry; repeated (row, column) entries add up, unsorted columns are fine
    matrix = sp.csr_matrix(
        (np.array([0.0, 2.0, 1.5, 3.0, 4.0], dtype=np.float32), np.array([3, 1, 1, 0, 2]), np.array([0, 1, 3, 5])), shape=(3, 4)
    )
    assert not matrix.has_canonical_format
    device_csr = DeviceCSR.from_scipy(matrix, CPU)
    np.testing.assert_array_equal(device_csr.dense().numpy(), matrix.toarray())
    np.testing.assert_array_equal(device_csr.dense(binary=True).numpy(), [[0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 1, 0]])
    assert matrix.nnz == 5, "building the device copy must not change the caller's matrix"


def test_csr_rows_to_dense_is_the_device_gather():
    matrix = random_csr(np.random.default_rng(1), 20, 15, 0.3, binary=False)
    np.testing.assert_array_equal(base.csr_rows_to_dense(matrix[[4, 2, 4]], CPU).numpy(), matrix[[4, 2, 4]].toarray())
    assert base.csr_rows_to_dense(matrix, CPU, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("max_length", [1, 3, 50])
def test_padded_rows_equal_pad_sequences(max_length):
    rng = np.random.default_rng(max_length)
    lengths = rng.integers(0, 9, size=30)
    lengths[[3, 17]] = 0  # users without items
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    items = rng.integers(0, 40, size=int(indptr[-1]))
    sequences = DeviceCSR.from_arrays(indptr, items, 40, CPU)
    for rows in (np.arange(30), rng.integers(0, 30, size=45), np.array([3, 17])):
        padded, kept = sequences.padded_rows(torch.as_tensor(rows), max_length, pad=40)
        expected, expected_kept = pad_sequences(items, indptr[rows], lengths[rows], max_length, 40)
        np.testing.assert_array_equal(padded.numpy(), expected)
        np.testing.assert_array_equal(kept.numpy(), expected_kept)
    empty = DeviceCSR.from_arrays(np.zeros(4, dtype=np.int64), np.zeros(0, dtype=np.int64), 40, CPU)
    padded, kept = empty.padded_rows(torch.arange(3), max_length, pad=40)
    np.testing.assert_array_equal(padded.numpy(), pad_sequences(np.zeros(0, dtype=np.int64), np.zeros(3), np.zeros(3), max_length, 40)[0])


def test_device_batches_draw_the_same_permutation_as_batches():
    def context(seed: int) -> tuple[FitContext, list]:
        seen: list = []
        made = FitContext(
            device=CPU,
            rng=np.random.default_rng(seed),
            seed=seed,
            mixed_precision=False,
            on_batch=lambda b, n: seen.append((b, n)),
            evaluator=None,
            fit_nested=None,  # type: ignore[arg-type]
        )
        return made, seen

    host, host_seen = context(7)
    device, device_seen = context(7)
    host_batches = list(host.batches(103, 10))
    device_batches = list(device.device_batches(103, 10))
    assert all(isinstance(b, torch.Tensor) and b.dtype == torch.int64 for b in device_batches)
    np.testing.assert_array_equal(np.concatenate(host_batches), torch.cat(device_batches).numpy())
    assert host_seen == device_seen == [(b, 11) for b in range(1, 12)]
    assert host.rng.random() == device.rng.random(), "both must leave the generator in the same state"


AUTOENCODERS = [
    ("multvae", checkerboard(), {"layers": (8, 4), "batch_size": 8}),
    ("multdae", checkerboard(), {"layers": (8,), "batch_size": 8}),
    ("cdae", checkerboard(), {"hidden": 8, "batch_size": 8}),
    ("cdae", checkerboard(), {"hidden": 8, "batch_size": 8, "n_negatives": 2}),
    ("autorec", checkerboard(ratings=True), {"hidden": 8, "batch_size": 8}),
    ("deeprec", checkerboard(ratings=True), {"layers": (8, 4), "batch_size": 8}),
    ("svae", checkerboard(), {"embedding_size": 8, "rnn_size": 8, "hidden_size": 8, "latent_size": 4, "batch_size": 8}),
]


@pytest.mark.parametrize("name,data,overrides", AUTOENCODERS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(AUTOENCODERS)])
def test_autoencoders_train_from_device_rows_without_a_host_densify(monkeypatch, name, data, overrides):
    """No batch is densified from host rows while training: csr_rows_to_dense raises, and no
    DeviceCSR is built inside an epoch (only once per fit, before the first one)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a training batch was densified on the host")

    monkeypatch.setattr(base, "csr_rows_to_dense", refuse)
    model = create_model(name, epochs=2, **overrides)
    training = {"epoch": False, "built_in_epoch": 0}
    from_scipy, from_arrays = DeviceCSR.from_scipy.__func__, DeviceCSR.from_arrays.__func__

    def counted(original):
        def build(cls, *args, **kwargs):
            training["built_in_epoch"] += training["epoch"]
            return original(cls, *args, **kwargs)

        return classmethod(build)

    monkeypatch.setattr(DeviceCSR, "from_scipy", counted(from_scipy))
    monkeypatch.setattr(DeviceCSR, "from_arrays", counted(from_arrays))
    train_epoch = model.train_epoch

    def watched(context, epoch):
        training["epoch"] = True
        try:
            return train_epoch(context, epoch)
        finally:
            training["epoch"] = False

    monkeypatch.setattr(model, "train_epoch", watched)
    history = Trainer(device="cpu", seed=0).fit(model, data)
    assert history.epochs_run == 2 and np.isfinite(history.epochs[-1]["loss"])
    assert training["built_in_epoch"] <= (1 if name == "svae" else 0)  # SVAE copies its sequences on first use
    for module in ("vae", "cdae", "rating_autoencoders", "svae"):
        assert not hasattr(__import__(f"recsys_core.models.{module}", fromlist=["_"]), "csr_rows_to_dense")


@pytest.mark.parametrize("name", ["bpr", "gmf", "multvae", "deeprec"])
def test_pairwise_and_autoencoder_epochs_take_their_batches_on_the_device(monkeypatch, name):
    """The epoch's permutation goes to the device once (device_batches), not a host array per batch."""

    def refuse(self, n, batch_size):
        raise AssertionError("host index batches were used")

    monkeypatch.setattr(FitContext, "batches", refuse)
    data = checkerboard(ratings=name == "deeprec")
    model = create_model(name, epochs=1, batch_size=16)
    Trainer(device="cpu", seed=0).fit(model, data)
    assert model.fitted
