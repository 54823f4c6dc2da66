"""Saved runs are untrusted input; model settings have one validation with bounds, wherever they come from.

Each tampered run must end in a clear RecsysError (RunFileError / RunNotFoundError / DataError) before
anything else is read, and one damaged run must not break `runs` for the others.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from recsys_core.errors import DataError, ModelError, RecsysError, RunFileError, RunNotFoundError
from recsys_core.experiment import DataSource, evaluate_run, run_experiment
from recsys_core.home import data_home, runs_dir
from recsys_core.models import create_model
from recsys_core.models.base import ModelConfig
from recsys_core.runs import MODEL_FILE, RunRecord, list_runs, load_run


@pytest.fixture
def small(ml100k):
    return ml100k.subset(np.flatnonzero(ml100k.user < 150), name="ml-100k-small")


@pytest.fixture
def gmf_run(small):
    return run_experiment(small, "gmf", device="cpu", overrides={"epochs": 1, "embedding_size": 8}).run_id


def _rewrite_tensors(run_id: str, change) -> None:
    path = runs_dir() / run_id / MODEL_FILE
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def _edit_json(run_id: str, name: str, change) -> None:
    path = runs_dir() / run_id / name
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def _embedding_name(run_id: str) -> str:
    return next(k for k, v in load_file(str(runs_dir() / run_id / MODEL_FILE)).items() if k.endswith("item.weight") and v.dim() == 2)


def _tamper_truncated(run_id):
    path = runs_dir() / run_id / MODEL_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _tamper_pickle(run_id):
    (runs_dir() / run_id / MODEL_FILE).write_bytes(pickle.dumps({"weights": [1, 2, 3]}))


def _tamper_shape(run_id):
    name = _embedding_name(run_id)
    _rewrite_tensors(run_id, lambda t: t.update({name: torch.zeros(t[name].shape[0], 3)}))


def _tamper_dtype(run_id):
    name = _embedding_name(run_id)
    _rewrite_tensors(run_id, lambda t: t.update({name: t[name].double()}))


def _tamper_missing_tensor(run_id):
    name = _embedding_name(run_id)
    _rewrite_tensors(run_id, lambda t: t.pop(name))


def _tamper_nan(run_id):
    name = _embedding_name(run_id)
    _rewrite_tensors(run_id, lambda t: t.update({name: torch.full_like(t[name], float("nan"))}))


def _tamper_indices(run_id):
    _rewrite_tensors(run_id, lambda t: t["known.indices"].__setitem__(0, 10**9))


def _tamper_model_name(run_id):
    _edit_json(run_id, "model.json", lambda m: m.update(model="os.system"))


def _tamper_config(run_id):
    _edit_json(run_id, "model.json", lambda m: m["config"].update(embedding_size=10**7))


def _tamper_config_type(run_id):
    _edit_json(run_id, "model.json", lambda m: m["config"].update(epochs="many"))


def _tamper_sizes(run_id):
    _edit_json(run_id, "model.json", lambda m: m.update(n_items=10**12))


def _tamper_vocab_missing(run_id):
    (runs_dir() / run_id / "vocab.json").unlink()


def _tamper_vocab_repeated(run_id):
    _edit_json(run_id, "vocab.json", lambda v: v["items"]["ids"].__setitem__(1, v["items"]["ids"][0]))


def _tamper_no_dataset(run_id):
    _edit_json(run_id, "run.json", lambda r: r.pop("dataset"))


def _tamper_source_options(run_id):
    _edit_json(
        run_id, "run.json", lambda r: r["dataset"].update(source={"kind": "file", "name": "x", "path": "x.csv", "options": {"evil": 1}})
    )


def _tamper_source_missing(run_id):
    _edit_json(run_id, "run.json", lambda r: r["dataset"].pop("source"))


def _tamper_run_json_garbage(run_id):
    (runs_dir() / run_id / "run.json").write_text("[1, 2")


def _tamper_symlink_out(run_id):
    outside = data_home().parent / f"outside-{run_id}.safetensors"
    shutil.move(runs_dir() / run_id / MODEL_FILE, outside)
    os.symlink(outside, runs_dir() / run_id / MODEL_FILE)


def _tamper_items_table(run_id):
    (runs_dir() / run_id / "items.parquet").write_bytes(b"PAR1 not really")


TAMPERED = [
    (_tamper_truncated, r"truncated or damaged|not a safetensors file"),
    (_tamper_pickle, r"is not a safetensors file \(a pickle or a truncated file\?\)"),
    (_tamper_shape, r"has shape \(\d+, 3\); this model's config needs \(\d+, 8\)"),
    (_tamper_dtype, r"is torch\.float64 .* needs torch\.float32"),
    (_tamper_missing_tensor, r"lacks the tensor"),
    (_tamper_nan, r"holds non-finite values"),
    (_tamper_indices, r"'known\.indices' refers to items outside"),
    (_tamper_model_name, r"unknown model 'os\.system'"),
    (_tamper_config, r"embedding_size=10000000 is outside its range 1 to 4096"),
    (_tamper_config_type, r"setting epochs='many' .* is not a valid int"),
    (_tamper_sizes, r"claims \d+ users and 1000000000000 items, which is not a valid size"),
    (_tamper_vocab_missing, r"has no vocab\.json"),
    (_tamper_vocab_repeated, r"repeated ids"),
    (_tamper_no_dataset, r"names no dataset"),
    (_tamper_source_options, r"has unknown file options: evil"),
    (_tamper_source_missing, r"has a damaged data source"),
    (_tamper_run_json_garbage, r"run\.json of run .* is not readable JSON"),
    (_tamper_symlink_out, r"model\.safetensors of run .* is a symbolic link"),
    (_tamper_items_table, r"items\.parquet of run .* is not readable"),
]


@pytest.mark.parametrize(("tamper", "message"), TAMPERED, ids=[t.__name__[8:] for t, _ in TAMPERED])
def test_a_tampered_run_is_a_clear_error(gmf_run, tamper, message, small):
    intact = run_experiment(small, "pop", device="cpu").run_id
    tamper(gmf_run)
    with pytest.raises(RunFileError) as caught:
        load_run(gmf_run)
    assert caught.value.message and "Traceback" not in str(caught.value)
    assert __import__("re").search(message, caught.value.message), caught.value.message
    # the other run still loads, and `runs` lists both (the damaged one marked)
    assert load_run(intact).model.name == "pop"
    listed = {r.run_id: r for r in list_runs()}
    assert set(listed) == {gmf_run, intact} and isinstance(listed[intact], RunRecord)
    code, out, err = _cli(["runs"])
    assert code == 0 and intact in out and gmf_run in out, err


def test_a_symlinked_run_folder_is_refused(gmf_run, tmp_path):
    shutil.move(runs_dir() / gmf_run, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", runs_dir() / gmf_run)
    with pytest.raises(RunFileError, match="is a symbolic link"):
        load_run(gmf_run)


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".hidden", "", "x" * 300, "run\x00id"])
def test_run_ids_cannot_escape(bad):
    with pytest.raises(RunNotFoundError, match="not a valid run id"):
        load_run(bad)


def test_evaluate_never_reads_a_data_path_outside_the_home(small, monkeypatch, tmp_path):
    import recsys_core.datasets as datasets

    outside = tmp_path / "passwd.csv"
    outside.write_text("user,item\n1,2\n")
    run_id = run_experiment(small, "pop", device="cpu", source=DataSource.builtin("ml-100k")).run_id
    for path in ("/etc/passwd", str(outside), str(data_home() / "uploads" / ".." / ".." / "x.csv")):
        _edit_json(
            run_id,
            "run.json",
            lambda r, p=path: r["dataset"].update(
                source={"kind": "file", "name": "x", "path": p, "options": {"user_col": "user", "item_col": "item"}}
            ),
        )

        def never(*args, **kwargs):
            raise AssertionError("a file outside the data home was read")

        monkeypatch.setattr(datasets, "read_user_file", never)
        if not os.path.exists(path):
            continue
        with pytest.raises(DataError, match="lies outside the data home's uploads/ and datasets/, so it is not read"):
            evaluate_run(run_id)


# -- one validation for settings from --set, the app and run.json -----------------------------------------------
@pytest.mark.parametrize(
    ("model", "overrides", "message"),
    [
        ("gmf", {"embedding_size": "100000"}, r"embedding_size=100000 is outside its range 1 to 4096"),
        ("gmf", {"embedding_size": 0}, r"outside its range"),
        ("gmf", {"epochs": 10**6}, r"epochs=1000000 is outside its range 1 to 1000"),
        ("gmf", {"batch_size": -5}, r"batch_size=-5 is outside"),
        ("gmf", {"learning_rate": "nan"}, r"not a finite number"),
        ("mlp", {"layers": "64,-1"}, r"layers=-1 is outside"),
        ("mlp", {"layers": [64] * 60}, r"at most 50 are allowed"),
        ("multvae", {"dropout": 1.5}, r"dropout=1.5 is outside its range 0 to 0.99"),
        ("itemknn", {"neighbours": 10**9}, r"outside"),
        ("ease", {"l2": -1.0}, r"l2=-1.0 is outside"),
        ("gmf", {"embedding_size": True}, r"is not a valid int"),
        ("gmf", {"embedding_size": 8.5}, r"is not a valid int"),
    ],
)
def test_settings_out_of_bounds_are_refused(model, overrides, message):
    with pytest.raises(ModelError, match=message):
        create_model(model, **overrides)


def test_from_json_checks_like_everything_else():
    from recsys_core.models import model_class

    config = model_class("gmf").Config
    assert config.from_json({"embedding_size": 16, "removed_setting": 3}).embedding_size == 16
    for bad in ({"embedding_size": "abc"}, {"embedding_size": [[1]]}, {"epochs": None}, {"layers": "x"}):
        with pytest.raises(ModelError):
            model_class("mlp" if "layers" in bad else "gmf").Config.from_json(bad)
    with pytest.raises(ModelError):
        config.from_json([1, 2])  # type: ignore[arg-type]
    assert issubclass(config, ModelConfig)


def _cli(args):
    from recsys_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "embedding_size=100000"], "outside its range 1 to 4096"),
        (["--epochs", "100000"], "epochs=100000 is outside its range 1 to 1000"),
        (["--set", "embedding_size=abc"], "is not a valid int"),
    ],
)
def test_cli_settings_go_through_the_same_validation(args, message):
    code, out, err = _cli(["train", "--dataset", "ml-100k", "--model", "gmf", "--device", "cpu", *args])
    assert code == 2 and message in err and "Traceback" not in err


def test_recommend_k_is_bounded():
    code, out, err = _cli(["recommend", "--run", "x", "--user", "1", "--k", "1000000"])
    assert code == 2 and "--k must be between 1 and 1000" in err


def test_every_default_config_is_within_bounds():
    from recsys_core.models import MODEL_NAMES

    for name in MODEL_NAMES:
        create_model(name)  # raises if a default broke a documented bound


def test_a_run_record_error_is_a_recsys_error():
    assert issubclass(RunFileError, RecsysError)
