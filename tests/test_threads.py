"""How many CPU threads a fit uses: one per core (one for narrow steps), fixed on request, never from the load."""

from __future__ import annotations

import pytest
import torch
from model_contract import checkerboard

from recsys_core import device
from recsys_core.errors import ModelError
from recsys_core.models import create_model
from recsys_core.trainer import Trainer


def test_requested_threads_are_used_and_bad_counts_refused():
    assert device.choose_threads(3) == 3
    with pytest.raises(ModelError, match="at least 1"):
        device.choose_threads(0)
    with pytest.raises(ModelError, match="at least 1"):
        Trainer(threads=0)


def test_auto_threads_are_one_per_core_and_one_for_narrow_steps(monkeypatch):
    monkeypatch.setattr(device, "usable_cores", lambda: 4)
    assert device.choose_threads() == 4
    assert device.choose_threads(wide_steps=False) == 1  # narrow steps: a second thread only waits
    monkeypatch.undo()
    assert device.usable_cores() >= 1  # the process's CPU affinity, hyper-thread siblings counted once


def test_a_seeded_fit_repeats_bit_for_bit_at_a_fixed_thread_count():
    """What the choice's independence of the load buys: at one thread count a seeded fit repeats bit for
    bit. (Across counts it may not: one and two threads split sums differently, in the last digits.)"""
    data = checkerboard()

    def losses(threads: int) -> list[float]:
        history = Trainer(device="cpu", seed=0, epochs=3, patience=0, threads=threads).fit(create_model("cdae", epochs=3, batch_size=4), data)
        return [e["loss"] for e in history.epochs]

    assert losses(2) == losses(2)  # the same count: the same result, bit for bit
    assert losses(1) == losses(1)


def test_a_fit_records_its_threads_per_epoch_and_restores_torchs_setting(monkeypatch):
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    before = torch.get_num_threads()
    data = checkerboard()
    history = Trainer(device="cpu", seed=0, epochs=2, patience=0).fit(create_model("multvae", epochs=2, batch_size=8), data)
    assert [e["threads"] for e in history.epochs] == [2, 2]
    history = Trainer(device="cpu", seed=0, epochs=2, patience=0).fit(create_model("gmf", epochs=2), data)
    assert [e["threads"] for e in history.epochs] == [1, 1]  # embedding models train on one thread
    history = Trainer(device="cpu", seed=0, epochs=1, patience=0, threads=1).fit(create_model("multvae", epochs=1, batch_size=8), data)
    assert [e["threads"] for e in history.epochs] == [1]
    assert torch.get_num_threads() == before


def test_cli_threads_must_be_positive(capsys):
    from recsys_core.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--dataset", "ml-100k", "--model", "pop", "--threads", "0"])
    assert "not a positive whole number" in capsys.readouterr().err


def test_tune_fixes_the_threads_of_its_search_and_of_the_run_it_saves(monkeypatch):
    from recsys_core import tuning
    from recsys_core.runs import load_run

    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    seen: list[int] = []
    real_limit = device.thread_limit
    monkeypatch.setattr("recsys_core.trainer.thread_limit", lambda n: (seen.append(n), real_limit(n))[1])
    result = tuning.tune(checkerboard(240), "multvae", trials=1, epochs=1, threads=1, device="cpu")  # 99 negatives need 120 unseen items
    assert seen and set(seen) == {1}  # the trial's fit, the selection fit and the refit of the saved run
    assert {e["threads"] for e in load_run(result.run_id).info.history.epochs} == {1}
