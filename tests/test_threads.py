"""How many CPU threads a fit uses: chosen from the cores no other process keeps busy, fixed on request."""

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


def test_auto_threads_leave_out_the_cores_other_processes_keep_busy(monkeypatch):
    monkeypatch.setattr(device, "usable_cores", lambda: 4)
    monkeypatch.setattr(device, "busy_cores", lambda: 0)
    assert device.choose_threads() == 4
    monkeypatch.setattr(device, "busy_cores", lambda: 3)
    assert device.choose_threads() == 1
    monkeypatch.setattr(device, "busy_cores", lambda: 9)  # an overloaded machine still gets one thread
    assert device.choose_threads() == 1
    monkeypatch.setattr(device, "busy_cores", lambda: 0)
    assert device.choose_threads(wide_steps=False) == 1  # narrow steps: a second thread only waits


def test_busy_cores_reads_the_runnable_tasks_less_the_reader(monkeypatch, tmp_path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("4.10 3.00 2.00 5/321 12345\n")
    real_path = device.Path
    monkeypatch.setattr(device, "Path", lambda p: loadavg if p == "/proc/loadavg" else real_path(p))
    assert device.busy_cores(samples=3, interval=0.0) == 4
    loadavg.write_text("garbage")
    assert device.busy_cores(samples=1) >= 0  # unreadable: the load average instead, never an error


def test_a_fit_records_its_threads_per_epoch_and_restores_torchs_setting(monkeypatch):
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    monkeypatch.setattr(device, "busy_cores", lambda: 0)
    before = torch.get_num_threads()
    data = checkerboard()
    history = Trainer(device="cpu", seed=0, epochs=2, patience=0).fit(create_model("multvae", epochs=2, batch_size=8), data)
    assert [e["threads"] for e in history.epochs] == [2, 2]
    history = Trainer(device="cpu", seed=0, epochs=2, patience=0).fit(create_model("gmf", epochs=2), data)
    assert [e["threads"] for e in history.epochs] == [1, 1]  # embedding models train on one thread
    history = Trainer(device="cpu", seed=0, epochs=1, patience=0, threads=1).fit(create_model("multvae", epochs=1, batch_size=8), data)
    assert [e["threads"] for e in history.epochs] == [1]
    assert torch.get_num_threads() == before


def test_auto_threads_back_off_when_the_machine_gets_busy_mid_fit(monkeypatch):
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    busy = iter([0, 2, 2, 2])  # at the start, then before epochs 2 and 3
    monkeypatch.setattr(device, "busy_cores", lambda: next(busy))
    history = Trainer(device="cpu", seed=0, epochs=3, patience=0).fit(create_model("multvae", epochs=3, batch_size=8), checkerboard())
    assert [e["threads"] for e in history.epochs] == [2, 1, 1]


def test_cli_threads_must_be_positive(capsys):
    from recsys_core.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--dataset", "ml-100k", "--model", "pop", "--threads", "0"])
    assert "not a positive whole number" in capsys.readouterr().err
