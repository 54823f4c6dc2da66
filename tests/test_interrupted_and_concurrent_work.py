"""Interrupted and concurrent work, bounded memory, and the app's training queue.

Processes are really killed (SIGKILL) at several points of `train` and `fetch`; afterwards no half-written
run or dataset is visible, earlier runs are intact, and the next start removes what the killed process
left. Two processes training into one home both save complete runs; the same seed gives the same metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from homes import child_env

from recsys_core import limits
from recsys_core.errors import LimitError
from recsys_core.home import clean_stale_staging, data_home, datasets_dir, runs_dir, uploads_dir
from recsys_core.jobs import TrainingSlots

REPO = Path(__file__).resolve().parents[1]
ML100K = REPO.parent / "shared" / "data" / "ml-100k"

# Runs the CLI in a child process after arming a SIGKILL at one point of the work.
CHILD = r"""
import os, signal, sys
point, args = sys.argv[1], sys.argv[2:]

def die(*_, **__):
    os.kill(os.getpid(), signal.SIGKILL)

if point == "mid-epoch":
    import recsys_core.models.vae as vae
    original = vae.MultDAE.train_epoch
    def epoch(self, context, number):
        if number >= 2:
            die()
        return original(self, context, number)
    vae.MultDAE.train_epoch = epoch
elif point == "mid-save":  # after the tensors, before vocab.json and run.json
    import recsys_core.runs as runs
    original = runs.save_model
    def save(model, folder):
        original(model, folder)
        die()
    runs.save_model = save
elif point == "before-rename":  # everything written, the rename not done
    import recsys_core.runs as runs
    real = os.replace
    def replace(src, dst):
        if ".runs" in str(dst) or os.path.basename(os.path.dirname(str(dst))) == "runs":
            die()
        return real(src, dst)
    runs.os.replace = replace
elif point.startswith("fetch-"):
    import importlib
    fetch = importlib.import_module("recsys_core.datasets.fetch")  # the package exports a function of that name
    if point == "fetch-install":  # files staged and checked, not renamed into place
        fetch._install = die
    else:  # half the files copied into the staging folder
        def copy(source, target, **kwargs):
            os.makedirs(target)
            first = sorted(os.listdir(source))[0]
            fetch.shutil.copyfile(os.path.join(source, first), os.path.join(target, first))
            die()
        fetch.shutil = type("Shutil", (), {"copytree": staticmethod(copy), "copyfile": staticmethod(__import__("shutil").copyfile), "rmtree": staticmethod(__import__("shutil").rmtree)})

from recsys_core.cli import main
sys.exit(main(args))
"""


def _child(point: str, args: list[str], wait: bool = True):
    env = child_env(data_home(), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, point, *args], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if not wait:
        return process
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def _fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def home_with_ml100k():
    from recsys_core.datasets import fetch

    fetch("ml-100k", source=ML100K)
    return data_home()


TRAIN = ["train", "--dataset", "ml-100k", "--model", "multdae", "--epochs", "3", "--device", "cpu", "--json"]


@pytest.mark.parametrize("point", ["mid-epoch", "mid-save", "before-rename"])
def test_sigkill_during_train_leaves_no_half_run_and_earlier_runs_intact(home_with_ml100k, point):
    from recsys_core.runs import list_runs, load_run

    code, out, err = _child("none", ["train", "--dataset", "ml-100k", "--model", "pop", "--device", "cpu", "--json"])
    assert code == 0, err
    earlier = json.loads(out.strip().splitlines()[-1])["run_id"]
    before = _fingerprint(runs_dir() / earlier)

    code, out, err = _child(point, TRAIN)
    assert code == -9, (code, err[-2000:])  # really killed
    visible = [p.name for p in runs_dir().iterdir() if not p.name.startswith(".")]
    assert visible == [earlier], "a killed training must leave no visible run"
    assert [r.run_id for r in list_runs()] == [earlier]
    assert _fingerprint(runs_dir() / earlier) == before
    assert load_run(earlier).model.name == "pop"
    leftovers = [p for p in runs_dir().iterdir() if p.name.startswith(".")]
    if point != "mid-epoch":
        assert leftovers, "the kill happened while the run was being written"
    # the next start (a new process using this home) removes what the killed writer left
    assert set(clean_stale_staging(data_home())) == set(leftovers)
    assert [p.name for p in runs_dir().iterdir()] == [earlier]


@pytest.mark.parametrize("point", ["fetch-copy", "fetch-install"])
def test_sigkill_during_fetch_leaves_no_half_dataset(point):
    from recsys_core.datasets import list_datasets

    code, out, err = _child(point, ["fetch", "ml-100k", "--source", str(ML100K)])
    assert code == -9, (code, err[-2000:])
    assert not (datasets_dir() / "ml-100k").exists()
    assert not next(r for r in list_datasets() if r["name"] == "ml-100k")["available"]
    assert [p for p in datasets_dir().iterdir() if p.name.startswith(".ml-100k.tmp-")], "killed while staging"
    clean_stale_staging(data_home())
    assert not [p for p in datasets_dir().iterdir() if p.name.startswith(".ml-100k.")]
    code, out, err = _child("none", ["fetch", "ml-100k", "--source", str(ML100K)])  # and fetching again works
    assert code == 0, err


def test_a_live_writers_staging_is_left_alone(tmp_path):
    live = runs_dir() / f".20990101-x-pop-abc.{os.getpid()}.zz1"
    live.mkdir()
    dead = runs_dir() / ".20990101-x-pop-abc.999999999.zz2"
    dead.mkdir()
    old_upload = uploads_dir() / ".upload-999999998-abc"
    old_upload.write_text("x")
    fresh_unknown = runs_dir() / ".something-else"
    fresh_unknown.mkdir()
    removed = set(clean_stale_staging(data_home()))
    assert removed == {dead, old_upload}
    assert live.exists() and fresh_unknown.exists()
    stale = time.time() - 2 * 3600
    os.utime(fresh_unknown, (stale, stale))
    assert set(clean_stale_staging(data_home())) == {fresh_unknown}


def test_two_processes_training_into_one_home_both_save(home_with_ml100k):
    from recsys_core.runs import list_runs, load_run

    args = ["train", "--dataset", "ml-100k", "--model", "itemknn", "--device", "cpu", "--json"]
    first, second = _child("none", args, wait=False), _child("none", args, wait=False)
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, [o[1][-1000:] for o in outputs]
    ids = [json.loads(out.strip().splitlines()[-1])["run_id"] for out, _ in outputs]
    assert len(set(ids)) == 2
    assert sorted(r.run_id for r in list_runs()) == sorted(ids)
    for run_id in ids:
        assert load_run(run_id).model.name == "itemknn"


def test_same_seed_same_metrics_on_the_cpu(ml100k):
    from recsys_core.experiment import run_experiment

    small = ml100k.subset(np.flatnonzero(ml100k.user < 200))
    runs = [run_experiment(small, "gmf", seed=7, device="cpu", overrides={"epochs": 2, "embedding_size": 8}, save=False) for _ in range(2)]
    assert runs[0].test.metrics == runs[1].test.metrics
    assert runs[0].record["history"] == [
        {k: v for k, v in h.items() if k != "seconds"} | {"seconds": h.get("seconds")} for h in runs[0].record["history"]
    ]
    losses = [[h.get("loss") for h in r.record["history"]] for r in runs]
    assert losses[0] == losses[1]


# -- memory ---------------------------------------------------------------------------------------------------------
def test_ease_memory_estimate_counts_the_float32_matrices_and_the_item_cap():
    from recsys_core.models.ease import EASEConfig

    estimate = limits.estimate_memory("ease", 1000, 40_000, 1_000_000)
    assert estimate.total >= 2 * 4 * 40_000**2  # two float32 n × n matrices while λ is chosen on validation
    assert "EASE" in estimate.dominant
    fixed = limits.estimate_memory("ease", 1000, 40_000, 1_000_000, EASEConfig(l2=500.0))
    assert fixed.total < estimate.total - 4 * 40_000**2 + 2**28  # a fixed λ needs one matrix
    capped = limits.estimate_memory("ease", 1000, 40_000, 1_000_000, EASEConfig(item_cap=10_000))
    assert capped.total < 2 * 4 * 10_000**2 + 2**30 and "10,000" in capped.dominant


def test_training_is_refused_before_it_starts_when_memory_is_short(ml100k, monkeypatch):
    from recsys_core.experiment import run_experiment

    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": 50 << 20)
    with pytest.raises(LimitError, match=r"ease on 943 users × 1,682 items needs about [\d.]+ GiB .*but only 0\.0 GiB") as caught:
        run_experiment(ml100k, "ease", device="cpu")
    assert "k-core" in caught.value.hint
    assert not list(runs_dir().iterdir())
    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": 64 << 30)
    limits.check_memory("ease", 943, 1682, 100_000)


@pytest.mark.parametrize("model", ["ease", "itemknn", "multvae", "gmf", "svae", "pop"])
def test_estimates_grow_with_the_data(model):
    small = limits.estimate_memory(model, 1000, 1000, 10_000).total
    large = limits.estimate_memory(model, 100_000, 50_000, 10_000_000).total
    assert 0 < small < large


def test_svae_estimate_counts_a_softmax_over_every_item_at_every_position_of_a_batch():
    """Measured on synthetic ML-1M shape (6,040 × 3,706, benchmarks/scale.py): an SVAE epoch peaked at
    1.3 GiB with max_length 100. Its logits are batch × max_length × items floats, so the estimate must cover that."""
    from recsys_core.models.svae import SVAEConfig

    estimate = limits.estimate_memory("svae", 6_040, 3_706, 1_000_209, SVAEConfig(max_length=100))
    assert estimate.total >= 1.3 * limits.GIB
    shorter = limits.estimate_memory("svae", 6_040, 3_706, 1_000_209, SVAEConfig(max_length=20))
    assert shorter.total < estimate.total / 2 and "softmax" in estimate.dominant


def test_embedding_model_estimates_count_an_epochs_training_arrays():
    """The pointwise NCF models hold 1 + n_negatives labelled examples per positive; BPR only its negatives."""
    from recsys_core.models.ncf import GMFConfig

    bpr = limits.estimate_memory("bpr", 138_493, 26_744, 20_000_263)
    gmf = limits.estimate_memory("gmf", 138_493, 26_744, 20_000_263)
    assert gmf.total > bpr.total
    fewer = limits.estimate_memory("gmf", 138_493, 26_744, 20_000_263, GMFConfig(n_negatives=1))
    assert fewer.total < gmf.total - 2 * limits.GIB


# Peak resident memory of one process that read, split and fitted each model (one epoch or its first
# 400 steps) at synthetic ML-20M shape (138,493 users × 26,744 items, 20,000,263 rows), in GiB:
# python benchmarks/scale.py --sizes "" --model-sizes 20m (EASE with l2=500, NeuMF without pretraining).
MEASURED_PEAK_GIB_AT_20M = {
    "bpr": 5.71, "gmf": 7.10, "mlp": 7.06, "neumf": 7.17, "cdae": 3.66, "deeprec": 3.16, "autorec": 6.08,
    "multdae": 3.11, "multvae": 3.18, "itemknn": 2.90, "ease": 5.19, "svae": 6.63,
}  # fmt: skip


@pytest.mark.parametrize("model", sorted(MEASURED_PEAK_GIB_AT_20M))
def test_memory_estimates_cover_the_peaks_measured_at_20m_shape(model):
    """The estimate is what a fit is refused on; below a measured peak it would let a fit run out of memory."""
    from recsys_core.models import create_model

    settings = {"ease": {"l2": 500.0}, "neumf": {"pretrain": False}, "svae": {"max_length": 100}}.get(model, {})  # as measured
    estimate = limits.estimate_memory(model, 138_493, 26_744, 20_000_263, create_model(model, **settings).config)
    assert estimate.total >= MEASURED_PEAK_GIB_AT_20M[model] * limits.GIB


def test_available_memory_reads_meminfo():
    free = limits.available_memory()
    assert free is None or 0 < free < 1 << 50


# -- the app's training queue ------------------------------------------------------------------------------------------
def test_one_training_per_session_and_a_bounded_number_per_server():
    slots = TrainingSlots(capacity=2)
    started, release = [], threading.Event()
    places: dict[str, list[int]] = {"c": []}

    def train(session: str) -> None:
        with slots.slot(session, on_wait=places.setdefault(session, []).append, poll=0.01):
            started.append(session)
            release.wait(10)

    threads = [threading.Thread(target=train, args=(s,)) for s in ("a", "b")]
    for t in threads:
        t.start()
    deadline = time.time() + 5
    while slots.running() < 2 and time.time() < deadline:
        time.sleep(0.01)
    with pytest.raises(LimitError, match="already training"):
        with slots.slot("a"):
            pass
    third = threading.Thread(target=train, args=("c",))
    third.start()
    time.sleep(0.2)
    assert started == ["a", "b"] or started == ["b", "a"]
    assert slots.queued() == 1 and places["c"] and places["c"][-1] == 1  # waiting, first in line
    release.set()
    for t in [*threads, third]:
        t.join(10)
    assert sorted(started) == ["a", "b", "c"] and slots.running() == 0 and slots.queued() == 0


def test_a_waiter_that_is_stopped_leaves_the_queue():
    slots = TrainingSlots(capacity=1)

    class Stop(Exception):
        pass

    def stop(place: int) -> None:
        raise Stop  # Streamlit's rerun / stop raises inside element updates

    with slots.slot("a"):
        with pytest.raises(Stop):
            with slots.slot("b", on_wait=stop, poll=0.01):
                pass
        assert slots.queued() == 0
    with slots.slot("b"):
        assert slots.running() == 1


def test_app_number_inputs_carry_the_documented_bounds():
    source = (REPO / "webapp" / "train_ui.py").read_text()
    assert "setting_bounds(" in source and "min_value=" in source and "max_value=" in source
    from webapp.train_ui import _bounds

    # The same name can mean different things: iALS's confidence weight alpha against NeuMF's mixing weight.
    assert _bounds("ials", "alpha") == (1e-3, 1e4) and _bounds("neumf", "alpha") == (0.0, 1.0)
    assert _bounds("gmf", "no_such_setting") == (None, None)
    jobs = (REPO / "webapp" / "train_jobs.py").read_text()
    assert "TRAINING_SLOTS.slot" in jobs and "train_in_slot(" in jobs
    assert "train_jobs.start_training" in (REPO / "app_pages" / "2_Train.py").read_text()
