"""The command line, run in-process (plus one real subprocess for `python -m recsys_core`)."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from recsys_core.cli import main
from recsys_core.datasets import fetch


@pytest.fixture
def home_with_ml100k(ml100k_dir, _isolated_home):
    fetch("ml-100k", source=ml100k_dir, progress=False)
    return _isolated_home


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_module_entry_point_and_help_of_every_command(capsys):
    result = subprocess.run([sys.executable, "-m", "recsys_core", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("datasets", "fetch", "train", "evaluate", "recommend", "runs"):
        assert command in result.stdout
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "usage:" in capsys.readouterr().out


def test_datasets_lists_builtins_and_availability(capsys, home_with_ml100k):
    code, out, _ = run_cli(capsys, "datasets", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) >= {"ml-100k", "ml-1m", "ml-20m", "ml-25m", "ml-latest-small", "drugscom", "drugscom-sample"}
    assert rows["ml-100k"]["available"] and not rows["ml-1m"]["available"]


def test_train_json_then_recommend_and_evaluate(capsys, home_with_ml100k):
    code, out, err = run_cli(capsys, "train", "--dataset", "ml-100k", "--model", "ease", "--json", "--device", "cpu")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert set(summary) >= {"run_id", "dataset", "model", "protocol", "metrics", "fit_seconds", "epochs_run"}
    assert summary["model"] == "ease" and summary["protocol"] == "loo-sampled"
    assert summary["metrics"]["HR@10"] > 0.6 and "NDCG@10" in summary["metrics"]
    run_id = summary["run_id"]
    beyond_names = {"Coverage@10", "Gini@10", "Novelty@10", "ILD@10", "ARP@10", "LongTail@10"}
    assert summary["beyond"]["available"] and set(summary["beyond"]["metrics"]) == beyond_names  # as run.json holds them

    code, out, err = run_cli(capsys, "recommend", "--run", run_id, "--user", "1", "--k", "5", "--json")
    assert code == 0, err
    table = json.loads(out)
    assert len(table) == 5 and {"title", "score"} <= set(table[0])

    code, out, err = run_cli(capsys, "evaluate", "--run", run_id, "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["metrics"]["HR@10"] == pytest.approx(summary["metrics"]["HR@10"], abs=1e-6)
    for name in beyond_names:  # the same lists computed again: the same numbers
        assert again["beyond"]["metrics"][name] == pytest.approx(summary["beyond"]["metrics"][name], abs=1e-9)

    code, out, err = run_cli(capsys, "evaluate", "--run", run_id, "--protocol", "loo-full", "--json")
    assert code == 0, err
    full = json.loads(out)
    assert full["metrics"]["HR@10"] < summary["metrics"]["HR@10"]
    for name in beyond_names:  # the lists gathered in the full-ranking pass: the same numbers again
        assert full["beyond"]["metrics"][name] == pytest.approx(summary["beyond"]["metrics"][name], abs=1e-9)

    code, out, _ = run_cli(capsys, "runs")
    assert run_id in out


def test_clear_errors_not_tracebacks(capsys, home_with_ml100k):
    code, _, err = run_cli(capsys, "recommend", "--run", "no-such-run", "--user", "1")
    assert code == 2 and "no saved run" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "train", "--dataset", "ml-100k", "--model", "ease", "--set", "nonsense=1")
    assert code == 2 and "no setting 'nonsense'" in err


def test_train_on_a_users_csv(capsys, tmp_path, ml100k):
    frame = ml100k.to_frame().rename(columns={"user": "customer", "item": "product", "rating": "stars", "timestamp": "when"})
    frame = frame[frame["customer"] <= 300]
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    code, out, err = run_cli(
        capsys,
        "train",
        "--csv",
        str(path),
        "--user-col",
        "customer",
        "--item-col",
        "product",
        "--rating-col",
        "stars",
        "--timestamp-col",
        "when",
        "--threshold",
        "3",
        "--model",
        "itemknn",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["dataset"] == "shop" and summary["metrics"]["HR@10"] > 0.3
    code, out, err = run_cli(capsys, "recommend", "--run", summary["run_id"], "--user", "1", "--json")
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", "--run", summary["run_id"], "--json")
    assert code == 0, err
    assert json.loads(out)["metrics"]["HR@10"] == pytest.approx(summary["metrics"]["HR@10"], abs=1e-6)


def test_csv_with_a_missing_column_is_a_clear_error(capsys, tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(path, index=False)
    code, _, err = run_cli(capsys, "train", "--csv", str(path), "--user-col", "user", "--item-col", "b", "--model", "pop")
    assert code == 2 and "'user'" in err and "Traceback" not in err


def test_csv_with_blank_ratings_is_refused_or_dropped_on_request(capsys, tmp_path, ml100k):
    frame = ml100k.to_frame()
    frame = frame[frame["user"] <= 200].astype({"rating": object})
    frame.iloc[::50, frame.columns.get_loc("rating")] = ""
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    common = ["train", "--csv", str(path), "--user-col", "user", "--item-col", "item", "--rating-col", "rating", "--model", "pop"]
    code, _, err = run_cli(capsys, *common)
    assert code == 2 and "more rows" in err and "blank rating" in err and "Traceback" not in err
    code, out, err = run_cli(capsys, *common, "--drop-blank-ratings", "--json")
    assert code == 0, err


def test_drug_recommendations_and_reverse_mode(capsys, drugs_sample_dir):
    fetch("drugscom-sample", source=drugs_sample_dir, progress=False)
    code, out, err = run_cli(capsys, "train", "--dataset", "drugscom-sample", "--model", "itemknn", "--protocol", "loo-full", "--json")
    assert code == 0, err
    run_id = json.loads(out.strip().splitlines()[-1])["run_id"]
    code, out, err = run_cli(capsys, "recommend", "--run", run_id, "--user", "Birth Control", "--k", "5")
    assert code == 0, err
    assert "not medical advice" in out
    code, out, err = run_cli(capsys, "recommend", "--run", run_id, "--reverse", "--item", "Nexplanon", "--k", "3", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["question"] == "drug" and answer["reviewed"][0]["name"] == "Birth Control" and len(answer["suggested"]) == 3
    code, _, err = run_cli(capsys, "recommend", "--run", run_id, "--user", "Birth Contrl")
    assert code == 2 and "Birth Control" in err  # suggests the close match


def test_train_with_random_loo_order_is_recorded_and_evaluated_again_on_the_same_split(capsys, home_with_ml100k):
    code, out, err = run_cli(
        capsys, "train", "--dataset", "ml-100k", "--model", "pop", "--loo-order", "random", "--json", "--device", "cpu"
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    from recsys_core.runs import load_run

    assert load_run(summary["run_id"]).record["split"]["loo_order"] == "random"
    code, out, err = run_cli(capsys, "evaluate", "--run", summary["run_id"], "--json")
    assert code == 0, err
    assert json.loads(out)["metrics"]["HR@10"] == pytest.approx(summary["metrics"]["HR@10"], abs=1e-6)
