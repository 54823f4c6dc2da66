"""Second pass over saved runs: special files, links out of the run, decoded-size bombs and hostile JSON.

Every file of a run is opened only when it is a regular file inside the run's folder and within the cap
of its kind (recsys_core.safe_files, recsys_core.limits); what it declares (rows, shapes, decoded sizes)
is checked before memory is spent on it. Each case has its own fixture and must end in a clear
RunFileError in seconds, never a hang, a MemoryError or a traceback, and leave the other runs listed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import stat
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file, save_file

from recsys_core import limits
from recsys_core.errors import RunFileError
from recsys_core.experiment import run_experiment
from recsys_core.home import runs_dir
from recsys_core.runs import MODEL_FILE, SEEN_FILE, BrokenRun, RunRecord, list_runs, load_run
from recsys_core.safe_files import check_regular_file, json_depth, parse_json, read_regular_file


@pytest.fixture
def small(ml100k):
    return ml100k.subset(np.flatnonzero(ml100k.user < 120), name="ml-100k-small")


@pytest.fixture
def pop_run(small) -> str:
    return run_experiment(small, "pop", device="cpu").run_id


@pytest.fixture
def gmf_run(small) -> str:
    return run_experiment(small, "gmf", device="cpu", overrides={"epochs": 1, "embedding_size": 8}).run_id


@contextlib.contextmanager
def deadline(seconds: int = 30):
    """Fail (instead of hanging the suite) when the block blocks on a pipe."""

    def expired(*_):
        raise TimeoutError(f"blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _cli(args):
    from recsys_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _zero_device(path: Path) -> bool:
    """/dev/zero's device node at ``path`` (needs CAP_MKNOD); False where the system forbids it."""
    path.unlink()
    try:
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        return False
    return True


# -- 1. special files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["run.json", "model.json", "vocab.json", MODEL_FILE, SEEN_FILE, "items.parquet"])
def test_a_named_pipe_in_a_run_is_refused_without_waiting(pop_run, small, name):
    other = run_experiment(small, "pop", device="cpu").run_id
    folder = runs_dir() / pop_run
    if name == "items.parquet" and not (folder / name).exists():
        pd.DataFrame({"title": [str(i) for i in range(small.n_items)]}).to_parquet(folder / name)
    _fifo(folder / name)
    with deadline():
        with pytest.raises(
            RunFileError, match=rf"{name} of run {pop_run} is a named pipe, not a regular file|model of run .* is a named pipe"
        ):
            load_run(pop_run)
        listed = {r.run_id: r for r in list_runs()}
        code, out, err = _cli(["runs"])
        rec_code, _, rec_err = _cli(["recommend", "--run", pop_run, "--user", "1"])
    assert isinstance(listed[other], RunRecord) and code == 0 and other in out and pop_run in out, err
    if name == "run.json":
        assert isinstance(listed[pop_run], BrokenRun) and "named pipe" in listed[pop_run].reason
    assert rec_code != 0 and "named pipe" in rec_err and "Traceback" not in rec_err


@pytest.mark.parametrize("name", ["run.json", SEEN_FILE])
def test_a_character_device_in_a_run_is_refused_before_reading(pop_run, name):
    path = runs_dir() / pop_run / name
    if not _zero_device(path):  # without CAP_MKNOD: the same check on the system's own /dev/zero
        with pytest.raises(RunFileError, match="is a character device, not a regular file"):
            check_regular_file(Path("/dev/zero"), "/dev/zero", 1 << 20)
        return
    with deadline():
        with pytest.raises(
            RunFileError, match=rf"{name} of run {pop_run} is a character device, not a regular file|model of run .* is a character device"
        ):
            load_run(pop_run)


def test_a_folder_in_place_of_run_json_is_listed_as_broken(pop_run):
    path = runs_dir() / pop_run / "vocab.json"
    path.unlink()
    path.mkdir()
    with pytest.raises(RunFileError, match="vocab.json of run .* is a folder, not a regular file"):
        load_run(pop_run)


@pytest.mark.parametrize(
    ("name", "cap"), [("run.json", "MAX_RUN_JSON_BYTES"), ("vocab.json", "MAX_VOCAB_JSON_BYTES"), (MODEL_FILE, "MAX_MODEL_BYTES")]
)
def test_each_kind_of_run_file_has_its_size_cap_checked_before_reading(pop_run, monkeypatch, name, cap):
    import recsys_core.safe_files as safe_files

    path = runs_dir() / pop_run / name
    monkeypatch.setattr(limits, cap, path.stat().st_size - 1)
    opened = []
    real_open = os.open
    monkeypatch.setattr(safe_files.os, "open", lambda p, *a, **k: opened.append(Path(p).name) or real_open(p, *a, **k))
    with pytest.raises(
        RunFileError,
        match=rf"{name} of run .* has [\d,.]+ (bytes|KiB|MiB), more than the [\d,.]+ (bytes|KiB|MiB) such a file may have|the model of run .* has [\d,.]+",
    ):
        load_run(pop_run)
    assert name not in opened  # refused from lstat, never opened


def test_the_helper_refuses_a_file_that_grows_past_its_cap_after_the_check(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    path.write_bytes(b"1" * 10)
    import recsys_core.safe_files as safe_files

    real = safe_files.check_regular_file

    def grow(*args, **kwargs):
        info = real(*args, **kwargs)
        path.write_bytes(b"1" * 100)
        return info

    monkeypatch.setattr(safe_files, "check_regular_file", grow)
    with pytest.raises(RunFileError, match="more than the 50 bytes"):
        read_regular_file(path, "x.json", 50)


# -- 2. evaluation-*.json --------------------------------------------------------------------------------------
def _evaluation(run_id: str) -> Path:
    return next((runs_dir() / run_id).glob("evaluation-*.json"))


def test_an_evaluation_linked_out_of_the_run_is_refused(pop_run, tmp_path):
    path = _evaluation(pop_run)
    protocol = path.stem[len("evaluation-") :]
    outside = tmp_path / "edited.json"
    data = json.loads(path.read_text())
    data["per_user"] = {k: [1.0] * len(v) for k, v in data["per_user"].items()}
    outside.write_text(json.dumps(data))
    path.unlink()
    os.symlink(outside, path)
    with pytest.raises(RunFileError, match=rf"evaluation-{protocol}.json of run {pop_run} is a symbolic link"):
        load_run(pop_run).evaluation(protocol)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (Path("/etc/passwd").read_bytes() if Path("/etc/passwd").exists() else b"root:x:0:0", "is not readable JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nests 100,000 levels deep"),
        (b"{}", "lacks its protocol, part or metrics"),
        (b'{"protocol": "loo-sampled", "part": "test", "metrics": {"HR@10": 1e999}}', "too large a number"),
        (
            b'{"protocol": "loo-sampled", "part": "test", "metrics": {}, "users": [0, 1], "per_user": {"HR@10": [1.0]}}',
            "1 values of HR@10 for 2 users",
        ),
        (b'{"protocol": "loo-sampled", "part": "test", "metrics": {}, "users": [0], "per_user": {"HR@10": [7.5]}}', "outside its range"),
        (b'{"protocol": "ratings", "part": "test", "metrics": {}}', "holds the evaluation of another protocol"),
    ],
    ids=["passwd", "deep", "keyless", "infinite", "lengths", "range", "protocol"],
)
def test_a_damaged_evaluation_is_a_clear_error(pop_run, content, message):
    path = _evaluation(pop_run)
    protocol = path.stem[len("evaluation-") :]
    path.write_bytes(content.replace(b"loo-sampled", protocol.encode()) if b'"ratings"' not in content else content)
    with pytest.raises(RunFileError, match=message):
        load_run(pop_run).evaluation(protocol)


def test_the_report_refuses_a_linked_evaluation_instead_of_concluding(pop_run, small, tmp_path):
    """The report's paired comparison reads the evaluations through Run.evaluation: a link is refused, not compared."""
    other = run_experiment(small, "itemknn", device="cpu").run_id
    for path in (runs_dir() / other).glob("evaluation-*.json"):
        outside = tmp_path / path.name
        outside.write_bytes(path.read_bytes())
        path.unlink()
        os.symlink(outside, path)
    from recsys_core.report import _paired_sentences

    runs = [load_run(pop_run), load_run(other)]
    with pytest.raises(RunFileError, match="is a symbolic link"):
        _paired_sentences(runs, runs[0].info.protocol)


# -- 4. memory bounded from what a file declares ------------------------------------------------------------------
def _items_parquet(run_id: str, table: pa.Table) -> None:
    pq.write_table(table, runs_dir() / run_id / "items.parquet")


def test_a_dictionary_bomb_in_items_parquet_is_refused_from_its_decoded_size(pop_run, monkeypatch):
    n = load_run(pop_run).model.n_items
    title = "x" * 5_000
    _items_parquet(pop_run, pa.table({"title": pa.array([title] * n)}))  # one dictionary entry, repeated
    assert (runs_dir() / pop_run / "items.parquet").stat().st_size < 100_000
    monkeypatch.setattr(limits, "MAX_TABLE_DECODED_BYTES", 1 << 20)
    with pytest.raises(RunFileError, match=r"items.parquet of run .* decodes to [\d,.]+ MiB, more than the 1.0 MiB allowed"):
        load_run(pop_run)


def test_items_parquet_declaring_more_rows_than_items_is_refused_before_decoding(pop_run):
    n = load_run(pop_run).model.n_items
    _items_parquet(pop_run, pa.table({"title": pa.array(["t"] * (n * 300))}))
    with pytest.raises(RunFileError, match=rf"has {n * 300} rows for {n} items"):
        load_run(pop_run)


def test_items_parquet_with_repeated_column_names_is_a_clear_error(pop_run):
    n = load_run(pop_run).model.n_items
    table = pa.Table.from_arrays([pa.array(["a"] * n), pa.array(["b"] * n)], names=["title", "title"])
    _items_parquet(pop_run, table)
    with pytest.raises(RunFileError, match="has repeated column names: 'title'"):
        load_run(pop_run)


def test_model_json_declaring_a_hundred_million_users_is_refused_before_allocating(gmf_run, monkeypatch):
    import tracemalloc

    load_run(gmf_run)  # imports and first-use caches out of the way of the measurement
    path = runs_dir() / gmf_run / "model.json"
    meta = json.loads(path.read_text())
    meta["n_users"] = 10**8  # an 8-wide float32 user table would be 3.2 GB, on top of 800 MB of CSR index
    path.write_text(json.dumps(meta))
    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": 1 << 40)  # the memory check alone would let it through
    tracemalloc.start()
    try:
        with pytest.raises(RunFileError, match=r"has shape \(\d+, 8\); this model's config needs \(100000000, 8\)"):
            load_run(gmf_run)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20, peak


def test_a_seen_file_declaring_another_user_count_is_refused_before_loading(pop_run):
    path = runs_dir() / pop_run / SEEN_FILE
    tensors = load_file(str(path))
    tensors["seen.indptr"] = tensors["seen.indptr"][:-1].contiguous()
    save_file(tensors, str(path))
    with pytest.raises(RunFileError, match="the sparse index declares shape"):
        load_run(pop_run)


# -- 8. safetensors headers and run.json values -------------------------------------------------------------------
def test_a_safetensors_header_nested_100000_deep_is_refused_before_parsing(pop_run):
    path = runs_dir() / pop_run / MODEL_FILE
    header = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(RunFileError, match="nests 100,001 levels deep, more than the 64"):
        load_run(pop_run)


def test_a_safetensors_header_longer_than_its_cap_is_refused(pop_run, monkeypatch):
    monkeypatch.setattr(limits, "MAX_SAFETENSORS_HEADER_BYTES", 16)
    with pytest.raises(RunFileError, match="is not a safetensors file"):
        load_run(pop_run)


def test_a_safetensors_file_swapped_after_its_checks_is_not_the_one_loaded(pop_run, monkeypatch):
    """The checked open file is loaded: junk renamed over model.safetensors or seen.safetensors meanwhile is never read."""
    from recsys_core import run_tensors

    folder = runs_dir() / pop_run
    check_header = run_tensors._safetensors_header
    swapped = []

    def check_then_swap(handle, label):
        header = check_header(handle, label)
        for name in (MODEL_FILE, SEEN_FILE):
            if os.stat(folder / name).st_ino == os.fstat(handle.fileno()).st_ino:
                (folder / "junk").write_bytes(b"\x80\x04 not a safetensors file")
                os.replace(folder / "junk", folder / name)
                swapped.append(name)
        return header

    before = load_run(pop_run)
    monkeypatch.setattr(run_tensors, "_safetensors_header", check_then_swap)
    run = load_run(pop_run)
    assert sorted(swapped) == sorted([MODEL_FILE, SEEN_FILE])
    np.testing.assert_array_equal(run.score(np.arange(5)), before.score(np.arange(5)))
    assert (run.seen != before.seen).nnz == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda text: text.replace('"seed": 0', '"seed": 0, "fit_seconds": 1e999'), "too large a number"),
        (lambda text: text.replace('"seed": 0', '"seed": 0, "fit_seconds": Infinity'), "Infinity is not a JSON number"),
        (lambda text: text.replace('"seed": 0', '"seed": 0, "fit_seconds": NaN'), "NaN is not a JSON number"),
        (
            lambda text: text.replace('"seed": 0', '"seed": 0, "note": "' + "x" * 200_000 + '"'),
            "a string of 200,000 characters, more than the 100,000 allowed",
        ),
    ],
    ids=["1e999", "Infinity", "NaN", "huge-string"],
)
def test_run_json_with_non_finite_numbers_or_huge_strings_is_refused(pop_run, change, message):
    path = runs_dir() / pop_run / "run.json"
    text = path.read_text()
    assert '"seed": 0' in text
    path.write_text(change(text))
    with pytest.raises(RunFileError, match=message):
        load_run(pop_run)
    broken = {r.run_id: r for r in list_runs()}[pop_run]
    assert isinstance(broken, BrokenRun) and message.split(",")[0].split(" is ")[0] in broken.reason


def test_json_depth_ignores_brackets_inside_strings():
    assert json_depth(b'{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    assert json_depth(b'{"a": "\\"[[[["}') == 1
    assert parse_json(b'{"a": [1, 2.5]}', "x") == {"a": [1, 2.5]}


def test_a_pipe_swapped_in_after_the_check_does_not_block(tmp_path, monkeypatch):
    """O_NONBLOCK + fstat: the pipe is refused at open even when the lstat check saw a regular file."""
    import recsys_core.safe_files as safe_files

    path = tmp_path / "run.json"
    path.write_text("{}")
    real = safe_files.check_regular_file

    def swap(*args, **kwargs):
        info = real(*args, **kwargs)
        path.unlink()
        os.mkfifo(path)
        return info

    monkeypatch.setattr(safe_files, "check_regular_file", swap)
    done = threading.Event()
    with deadline(10):
        with pytest.raises(RunFileError, match="was replaced while it was opened"):
            safe_files.read_regular_file(path, "run.json", 1000)
        done.set()
    assert done.is_set()


# -- 4. a cached embedding map --------------------------------------------------------------------------------------
@pytest.fixture
def ease_run(small) -> str:
    return run_experiment(small, "ease", device="cpu", overrides={"l2": 50.0}).run_id


def test_an_embedding_map_that_inflates_past_its_cap_is_not_loaded(ease_run, monkeypatch, caplog):
    from recsys_core import embedding_map

    folder = runs_dir() / ease_run
    n = load_run(ease_run).model.n_items
    with open(folder / "map-items.npz", "wb") as handle:  # 3 million zero rows: a few hundred KB compressed, 24 MB inflated
        np.savez_compressed(handle, coords=np.zeros((3_000_000, 2), np.float32), settings=np.array([1, 2, 3]))
    assert (folder / "map-items.npz").stat().st_size < 1_000_000
    monkeypatch.setattr(limits, "MAX_MAP_BYTES", 8 << 20)
    loaded = []
    monkeypatch.setattr(np, "load", lambda *a, **k: loaded.append(a))
    with caplog.at_level("WARNING", logger="recsys_core.embedding_map"):
        assert embedding_map.load_map(folder, "items", n_points=n) is None
    assert not loaded and "map-items.npz inflates to 23 MiB, more than the 8 MiB a map may have" in caplog.text


def test_an_embedding_map_whose_header_declares_a_huge_array_is_not_loaded(ease_run, caplog):
    import zipfile

    from recsys_core import embedding_map

    folder = runs_dir() / ease_run
    header = np.lib.format.header_data_from_array_1_0(np.zeros((2, 2), np.float32))
    header["shape"] = (10**10, 2)  # 80 GB declared in a member of a few bytes
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, header)
    with zipfile.ZipFile(folder / "map-items.npz", "w") as archive:
        archive.writestr("coords.npy", stream.getvalue() + b"\0" * 16)
        archive.writestr("settings.npy", stream.getvalue())
    with caplog.at_level("WARNING", logger="recsys_core.embedding_map"):
        assert embedding_map.load_map(folder, "items") is None
    assert "declares 76,294 MiB" in caplog.text


def test_a_named_pipe_as_an_embedding_map_is_not_waited_on(ease_run):
    from recsys_core import embedding_map

    folder = runs_dir() / ease_run
    os.mkfifo(folder / "map-items.npz")
    with deadline():
        assert embedding_map.load_map(folder, "items") is None


# -- 8. a run.json data path: the same message whether an outside path exists or not ----------------------------------
def test_a_data_path_outside_the_home_gets_the_same_message_whether_it_exists_or_not(tmp_path):
    from recsys_core.datasets.source import DataSource
    from recsys_core.errors import DataError

    existing = tmp_path / "there.csv"
    existing.write_text("user,item\n1,2\n")
    messages = []
    for path in (existing, tmp_path / "not-there.csv", Path("/etc/passwd"), Path("/no/such/file.csv")):
        with pytest.raises(DataError) as caught:
            DataSource.file(path, {"user_col": "user", "item_col": "item"}).load()
        messages.append(caught.value.message.replace(repr(str(path)), "PATH"))
    assert len(set(messages)) == 1, messages
    assert "is no longer there or lies outside the data home's uploads/ and datasets/" in messages[0]


def _ml100k_for_the_app(ml100k_dir):
    """The repository (importable, for the pages' imports), and ml-100k fetched into the home: (repo, source, data)."""
    import sys

    from recsys_core.datasets import fetch
    from recsys_core.experiment import DataSource

    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    fetch("ml-100k", source=ml100k_dir)
    source = DataSource.builtin("ml-100k")
    return repo, source, source.load()


def _clear_streamlit_caches() -> None:
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()


def test_app_pages_that_list_runs_do_not_wait_on_a_named_pipe(ml100k_dir):
    from streamlit.testing.v1 import AppTest

    repo, source, data = _ml100k_for_the_app(ml100k_dir)
    piped, intact = (run_experiment(data, "pop", device="cpu", source=source).run_id for _ in range(2))
    _fifo(runs_dir() / piped / "run.json")
    _clear_streamlit_caches()
    for page in ("app.py", "app_pages/2_Train.py", "app_pages/3_Recommend.py"):
        at = AppTest.from_file(str(repo / page), default_timeout=120)
        at.session_state["source"] = source.to_json()
        with deadline(150):
            at.run()
        assert not at.exception, (page, [e.message for e in at.exception])
    assert at.selectbox(key="rec_run").value == intact


def test_the_compare_page_shows_a_linked_evaluation_as_one_message(ml100k_dir, tmp_path):
    from streamlit.testing.v1 import AppTest

    repo, source, data = _ml100k_for_the_app(ml100k_dir)
    run_ids = [run_experiment(data, model, device="cpu", source=source).run_id for model in ("pop", "itemknn")]
    for path in (runs_dir() / run_ids[0]).glob("evaluation-*.json"):
        outside = tmp_path / path.name
        outside.write_bytes(path.read_bytes())
        path.unlink()
        os.symlink(outside, path)
    _clear_streamlit_caches()
    at = AppTest.from_file(str(repo / "app_pages" / "4_Compare.py"), default_timeout=240)
    at.session_state["source"] = source.to_json()
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "is a symbolic link" in errors[0], errors
    assert not any("cannot be paired" in i.value for i in at.info)
