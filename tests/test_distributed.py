"""Data-parallel training: two CPU ranks with gloo under torchrun, against one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from homes import child_env

from recsys_core.cli import main
from recsys_core.datasets import fetch

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--dataset", "ml-100k", "--model", "bpr", "--epochs", "4", "--set", "patience=0", "--device", "cpu", "--json"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(home: Path, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    env = child_env(home, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}", "-m", "recsys_core", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


@pytest.fixture
def home_with_ml100k(ml100k_dir, _isolated_home):
    fetch("ml-100k", source=ml100k_dir, progress=False)
    return _isolated_home


def test_two_gloo_ranks_train_save_a_loadable_run_with_metrics_like_one_process(home_with_ml100k, capsys):
    assert main(TRAIN) == 0
    single = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    out = _torchrun(home_with_ml100k, *TRAIN, "--distributed")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, "only rank 0 prints"
    ranks = json.loads(lines[0])
    assert ranks["world_size"] == 2 and ranks["backend"] == "gloo"

    from recsys_core.runs import list_runs, load_run

    assert len(list_runs()) == 2, "only rank 0 saves"
    run = load_run(ranks["run_id"])
    assert run.record["distributed"] == {"world_size": 2, "backend": "gloo"}
    items, _ = run.model.recommend(np.arange(3), k=5)
    assert items.shape == (3, 5)
    # Same data, same seed, half the steps of twice the batch: within the 95% interval's half-width (~0.03).
    assert abs(ranks["metrics"]["HR@10"] - single["metrics"]["HR@10"]) < 0.05
    assert ranks["metrics"]["HR@10"] > 0.5


def test_distributed_without_torchrun_is_a_clear_error(home_with_ml100k, capsys):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        os.environ.pop(name, None)
    assert main([*TRAIN, "--distributed"]) == 2
    err = capsys.readouterr().err
    assert "torchrun" in err and "Traceback" not in err


def test_a_failing_rank_stops_every_rank_with_a_message(home_with_ml100k):
    out = _torchrun(home_with_ml100k, *TRAIN[:-1], "--set", "no_such_setting=1", "--distributed")
    assert out.returncode != 0
    assert "no setting 'no_such_setting'" in out.stderr


@pytest.fixture
def one_rank_group(monkeypatch):
    """A one-rank gloo process group in this process: what torchrun --nproc_per_node=1 --distributed sets up."""
    from recsys_core import distributed

    for name, value in {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
    }.items():
        monkeypatch.setenv(name, value)
    context = distributed.init_from_environment("cpu")
    yield context
    distributed.shutdown()


def test_every_gradient_model_trains_through_distributed_data_parallel(one_rank_group):
    """DDP raises on the step after one in which a parameter got no gradient (or was used outside its
    ``forward``); two epochs of every iterative model through the wrapper show none does."""
    from model_contract import checkerboard
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    from recsys_core.models import MODEL_NAMES, create_model, model_class
    from recsys_core.models.base import TorchRecommender
    from recsys_core.trainer import fit_model

    overrides = {"neumf": {"pretrain_epochs": (1, 1)}, "deeprec": {"layers": (16,)}, "svae": {"max_length": 8}}
    trained = []
    for name in MODEL_NAMES:
        if not issubclass(model_class(name), TorchRecommender):  # iALS: implicit's solver, not gradient steps
            continue
        model = create_model(name, epochs=2, batch_size=8, **overrides.get(name, {}))
        fit_model(model, checkerboard(ratings=name in ("autorec", "deeprec")), device="cpu", seed=0)
        assert isinstance(model.step_module, DistributedDataParallel), name
        tables = [m for m in model.network.modules() if isinstance(m, nn.Embedding)]
        assert not any(table.sparse for table in tables), f"{name}: DDP all-reduces dense gradients"
        assert all(torch.isfinite(p).all() for p in model.network.parameters()), name
        trained.append(name)
    assert {"bpr", "gmf", "mlp", "neumf", "autorec", "deeprec", "cdae", "multvae", "multdae", "svae"} <= set(trained)


@pytest.mark.parametrize("backend", ["gloo", "nccl"])
def test_ranks_take_dense_embedding_gradients(monkeypatch, backend):
    """Under torchrun the tables are dense and plain Adam updates them: NCCL cannot all-reduce sparse
    tensors, and DDP's sparse path on gloo corrupted the heap in one run of three (torch 2.13)."""
    from recsys_core import distributed
    from recsys_core.models import create_model

    monkeypatch.setattr(distributed, "_CONTEXT", distributed.DistributedContext(0, 2, 0, backend))
    model = create_model("bpr")
    model.n_users, model.n_items = 4, 6
    model._build()
    assert not any(table.sparse for table in model.network.modules() if isinstance(table, torch.nn.Embedding))
    optimizer = model.make_optimizer()
    assert [type(part).__name__ for part in optimizer.parts] == ["Adam"]
