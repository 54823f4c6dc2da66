"""Hostile uploads: every file in tests/fixtures/hostile/ and the message it must produce.

The path under test is the app's and ``train --csv``'s: sniff the file, take the guessed columns,
read it, then check the data against the protocol. Each file ends in Interactions or in one
DataError sentence (what, where, how to fix), never another exception, and the data home is left
as it was. Large cases (a 1 MB cell, a file over the size limit, too many rows) are made at test
time; the limits are lowered with monkeypatch where a real-size case would be slow.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys_core import limits
from recsys_core.datasets import UserFileOptions, read_user_file, sniff_user_file
from recsys_core.errors import DataError
from recsys_core.home import data_home, uploads_dir
from recsys_core.interactions import Interactions

HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"
OK = None

# (file, what must happen: None = read fine, else a regex of the DataError message, limits lowered for this case)
CASES: list[tuple[str, str | None, dict]] = [
    ("empty.csv", r"^empty\.csv is empty$", {}),
    ("whitespace_only.csv", r"is empty", {}),
    ("header_only.csv", r"header but no rows of data", {}),
    ("binary_garbage.bin", r"looks like binary data, not a CSV, TSV or parquet file", {}),
    ("pickle_renamed.csv", r"looks like binary data", {}),
    ("wrong_delimiter.txt", r"has a single column .*: its delimiter is none of comma, tab, semicolon or '\|'", {}),
    ("one_column.csv", r"one_column\.csv has a single column 'user'", {}),
    ("utf16_bom.csv", OK, {}),
    ("utf16_no_bom.csv", OK, {}),
    ("latin1.csv", OK, {}),
    ("utf8_bom_crlf.csv", OK, {}),
    ("mixed_type_ids.csv", OK, {}),
    ("empty_user_id.csv", r"the user column 'user' is empty in row 7 of empty_user_id\.csv", {}),
    ("negative_ratings.csv", OK, {}),
    ("huge_ratings.csv", r"the rating column 'rating' has 1e\+300 in row 5 .*ratings must be finite numbers", {}),
    ("infinite_ratings.csv", r"the rating column 'rating' has inf in row 5", {}),
    ("nan_ratings.csv", r"non-numeric value 'NaN' in row 5", {}),
    ("nonnumeric_ratings.csv", r"non-numeric value 'five stars' in row 5", {}),
    ("negative_timestamps.csv", r"timestamp column 'timestamp' has '-9000000000' in row 5 .*outside the supported years 1900 to 2200", {}),
    ("huge_timestamps.csv", r"has '1e20' in row 5 .*outside the supported years", {}),
    ("infinite_timestamps.csv", r"has 'inf' in row 5 .*outside the supported years", {}),
    ("nonnumeric_timestamps.csv", r"has 'yesterday' in row 5 .*neither a unix time nor a date", {}),
    ("far_future_dates.csv", r"has '2250-01-01' in row 2 .*outside the supported years", {}),
    ("millisecond_timestamps.csv", OK, {}),
    ("duplicate_rows.csv", OK, {}),
    ("one_user.csv", r"has 1 user\(s\), 150 item\(s\) .*too few to train and test", {}),
    ("one_item.csv", r"has 50 user\(s\), 1 item\(s\)", {}),
    ("single_interaction_per_user.csv", r"every user has a single interaction, so there is nothing to split", {}),
    ("two_interactions_per_user.csv", r"no user has 3 different items \(the most any user has is 2\)", {}),
    ("few_items.csv", r"has 20 items, fewer than the 99 sampled negatives \+ 1 test item", {}),
    ("thousand_columns.csv", r"has 1,000 columns, more than the 256 allowed", {}),
    ("quotes_and_newlines.csv", r"no user has 3 different items", {}),  # read fine: see test_what_the_readable_hostile_files_contain
    ("formula_cells.csv", r"every user has a single interaction", {}),
    ("html_titles.csv", r"every user has a single interaction", {}),
    ("ids_up_to_1e12.csv", OK, {}),
    ("ragged_rows.csv", r"cannot be read as a table separated by commas", {}),
    ("unclosed_quote.csv", r"cannot be read as a table separated by commas", {}),
    ("semicolons_decimal_commas.csv", OK, {}),
    ("truncated.csv.gz", r"is a damaged gzip file: it ends before its data does", {}),
    ("not_really.csv.gz", r"is a damaged gzip file", {}),
    ("gzip_bomb.csv.gz.gz", r"gzip_bomb\.csv\.gz expands more than 100-fold \(a decompression bomb\?\), so it is not unpacked", {}),
    ("gzip_small_bomb.csv.gz", r"expands to more than the limit of 1 MB", {"MAX_DECOMPRESSED_BYTES": 1_000_000}),
    ("gzip_nested_four_times.csv.gz", r"is compressed inside compressed files 4 times", {}),
    ("good.csv.gz", OK, {}),
    ("good.zip", OK, {}),
    ("zip_many_members.zip", r"is a zip archive with 100 entries, more than the 64 allowed", {}),
    ("zip_two_tables.zip", r"holding 2 files \(a\.csv, b\.csv\); it must hold exactly one table", {}),
    ("zip_path_traversal.zip", r"holds an entry named '\.\./\.\./\.\./\.\./tmp/evil\.csv' that points outside the archive", {}),
    ("zip_absolute_path.zip", r"holds an entry named '/etc/cron\.d/evil\.csv' that points outside the archive", {}),
    ("zip_small_bomb.zip", r"expands to more than the limit of 1 MB", {"MAX_DECOMPRESSED_BYTES": 1_000_000}),
    ("excel_renamed.csv", r"is an Excel workbook \(or another Office file\), not a text table", {}),
    ("empty.zip", r"is a zip archive or an Excel workbook, not a text table", {}),
    ("nested_items.parquet", r"the column 'item' of nested_items\.parquet holds nested values", {}),
    ("dictionary_columns.parquet", OK, {}),
    ("nan_user_ids.parquet", r"the user column 'user' is empty in row 3", {}),
    ("huge_float_ids.parquet", r"has the id 1e\+300 in row 3 .*not a usable id", {}),
    ("uint64_ids.parquet", r"every user has a single interaction", {}),
    ("truncated.parquet", r"is not a readable parquet file", {}),
    ("duplicate_rows.csv", r"duplicate_rows\.csv has [\d.]+ MB, more than the limit of 0 MB", {"MAX_FILE_BYTES": 1_000}),
    ("duplicate_rows.csv", r"has more than 10 rows, the most one file may have", {"MAX_ROWS": 10}),
]


def sniff_and_read(source, name: str | None = None) -> Interactions:
    """What the app and ``train --csv`` do: sniff, take the guessed columns, read, check the protocol."""
    from recsys_core.limits import check_protocol_data

    sniff = sniff_user_file(source)
    guesses = sniff["guesses"]
    options = UserFileOptions(
        user_col=guesses["user"] or "user",
        item_col=guesses["item"] or "item",
        rating_col=guesses["rating"],
        timestamp_col=guesses["timestamp"],
        title_col=guesses["title"] if guesses["title"] not in (guesses["user"], guesses["item"]) else None,
    )
    data = read_user_file(source, options, name=name)
    check_protocol_data(data, "loo-sampled")
    return data


def _files(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()}


def test_the_corpus_has_at_least_40_files_and_each_has_a_row():
    files = {p.name for p in HOSTILE.iterdir() if p.is_file() and p.suffix != ".py"}
    assert len(files) >= 40
    assert files == {name for name, _, _ in CASES}, "every corpus file needs its row in CASES"


@pytest.mark.parametrize(("name", "expected", "lowered"), CASES, ids=[f"{n}-{'-'.join(lowered) or 'default'}" for n, _, lowered in CASES])
def test_each_hostile_file_gives_its_message(name, expected, lowered, monkeypatch):
    for key, value in lowered.items():
        monkeypatch.setattr(limits, key, value)
    home = data_home()
    before = _files(home)
    if expected is None:
        data = sniff_and_read(HOSTILE / name)
        assert isinstance(data, Interactions) and len(data) > 0
    else:
        with pytest.raises(DataError) as caught:
            sniff_and_read(HOSTILE / name)
        error = caught.value
        assert type(error) is DataError
        assert re.search(expected, error.message), error.message
        assert "\n" not in error.message and len(error.message) < 400, "one short sentence"
        assert "Traceback" not in str(error)
    assert _files(home) == before, "reading a file must leave the data home as it was"


def test_what_the_readable_hostile_files_contain():
    latin = sniff_and_read(HOSTILE / "latin1.csv")
    assert any("Café" in str(t) for t in latin.item_titles())
    big = sniff_and_read(HOSTILE / "ids_up_to_1e12.csv")
    assert big.users.ids.dtype == np.int64 and big.users.ids.max() == 10**12
    quoted = read_user_file(HOSTILE / "quotes_and_newlines.csv", UserFileOptions("user", "item", title_col="title"))
    assert 'The "Big" One' in quoted.item_titles().tolist() and "two\nlines, and a comma" in quoted.item_titles().tolist()
    formulas = read_user_file(HOSTILE / "formula_cells.csv", UserFileOptions("user", "item", title_col="title"))
    assert "=1+1" in formulas.users.ids.tolist() and "@SUM" in formulas.users.ids.tolist()  # kept as text, never evaluated
    ms = sniff_and_read(HOSTILE / "millisecond_timestamps.csv")
    assert ms.timestamp.max() < 2_000_000_000  # milliseconds became seconds
    wide = read_user_file(HOSTILE / "uint64_ids.parquet", UserFileOptions("user", "item"))
    assert "18446744073709551615" in wide.users.ids.tolist()  # 2^64 - 1 kept as text, never wrapped around


def test_a_one_megabyte_cell_is_refused(tmp_path):
    path = tmp_path / "big_cell.csv"
    path.write_text("user,item,title\n1,2,short\n3,4," + "x" * (1 << 20) + "\n")
    with pytest.raises(DataError, match=r"the column 'title' has a value of 1,048,576 characters in row 3 .*more than the 100,000 allowed"):
        read_user_file(path, UserFileOptions("user", "item", title_col="title"))
    preview = sniff_user_file(path)["preview"]
    assert preview["title"].str.len().max() <= 200  # the preview never carries the whole cell


def test_file_objects_are_read_only_up_to_the_limit(monkeypatch):
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 100)

    class Endless(io.RawIOBase):
        name = "endless.csv"
        read_calls: list[int] = []

        def read(self, size=-1):
            self.read_calls.append(size)
            return (b"u,i\n" + b"1,2\n" * size)[:size]

    endless = Endless()
    with pytest.raises(DataError, match="more than the limit"):
        sniff_user_file(endless)
    assert endless.read_calls == [101]


def test_the_streamlit_upload_limit_is_the_documented_one():
    config = (Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text()
    assert re.search(rf"^maxUploadSize = {limits.MAX_UPLOAD_MB}$", config, re.M)


def test_rejected_uploads_leave_nothing_in_uploads():
    from webapp.data_ui import accept_upload

    rejected = [name for name, expected, lowered in CASES if expected is not None and not lowered]
    refused_at_upload = 0
    for name in rejected:
        try:
            accept_upload((HOSTILE / name).read_bytes(), name)
        except DataError as error:
            assert "\n" not in error.message
            refused_at_upload += 1
            assert not [p for p in uploads_dir().iterdir()], f"{name} left a file in uploads/"
        else:  # accepted for the preview (the values are checked when read): remove and go on
            for path in uploads_dir().iterdir():
                path.unlink()
    assert refused_at_upload >= 15


def _run_cli(args: list[str]) -> tuple[int, str, str]:
    import contextlib

    from recsys_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", ["huge_ratings.csv", "single_interaction_per_user.csv", "few_items.csv", "zip_path_traversal.zip"])
def test_train_csv_keeps_nothing_of_a_rejected_file(name):
    code, out, err = _run_cli(
        [
            "train",
            "--csv",
            str(HOSTILE / name),
            "--user-col",
            "user",
            "--item-col",
            "item",
            "--rating-col",
            "rating",
            "--model",
            "pop",
            "--json",
            "--device",
            "cpu",
        ]
    )
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert not list(uploads_dir().iterdir())
    assert not (data_home() / "runs").exists() or not list((data_home() / "runs").iterdir())


def test_train_csv_json_is_strict_json_and_the_file_is_kept():
    code, out, err = _run_cli(
        [
            "train",
            "--csv",
            str(HOSTILE / "duplicate_rows.csv"),
            "--user-col",
            "user",
            "--item-col",
            "item",
            "--model",
            "pop",
            "--json",
            "--device",
            "cpu",
        ]
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1], parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert all(np.isfinite(v) for v in summary["metrics"].values())
    assert len(list(uploads_dir().iterdir())) == 1 and not [p for p in uploads_dir().iterdir() if p.name.startswith(".")]


def test_train_csv_records_the_duplicate_rule_and_the_file_name():
    import hashlib

    from recsys_core.runs import load_run

    path = HOSTILE / "duplicate_rows.csv"
    code, out, err = _run_cli(
        [
            "train",
            "--csv",
            str(path),
            "--user-col",
            "user",
            "--item-col",
            "item",
            "--duplicates",
            "count",
            "--model",
            "pop",
            "--json",
            "--device",
            "cpu",
        ]
    )
    assert code == 0, err
    run = load_run(json.loads(out.strip().splitlines()[-1])["run_id"])
    source = run.record["dataset"]["source"]
    assert source["options"]["duplicates"] == "count" and source["display_name"] == "duplicate_rows.csv"
    # The copy has the content-hash name the app would give the same bytes.
    assert Path(source["path"]).name == hashlib.sha256(path.read_bytes()).hexdigest()[:32] + ".csv"
    code, out, err = _run_cli(
        ["train", "--csv", str(path), "--user-col", "user", "--item-col", "item", "--duplicates", "sum", "--model", "pop"]
    )
    assert code == 2 and "summing repeated (user, item) rows needs a weight column" in err


def test_a_run_with_nan_metrics_is_never_saved(ml100k):
    from recsys_core.errors import RecsysError
    from recsys_core.home import runs_dir
    from recsys_core.models import create_model
    from recsys_core.runs import DatasetRecord, ModelRecord, RunRecord, Scores, save_run
    from recsys_core.trainer import fit_model

    small = ml100k.subset(np.arange(2000))
    model = fit_model(create_model("pop"), small)
    with pytest.raises(RecsysError, match=r"the run was not saved: its test metrics HR@10 are not finite"):
        save_run(
            model,
            users=small.users,
            items=small.items,
            record=RunRecord(
                "", ModelRecord("pop"), DatasetRecord("x"), "loo-sampled", "HR@10", scores=Scores({"HR@10": float("nan"), "NDCG@10": 0.1})
            ),
        )
    assert not list(runs_dir().iterdir())


def test_json_lines_never_hold_nan():
    from recsys_core.cli import _json_line

    line = _json_line({"metrics": {"HR@10": float("nan"), "x": [float("inf"), 1.0]}})
    assert json.loads(line) == {"metrics": {"HR@10": None, "x": [None, 1.0]}}


# -- property: whatever arrives, Interactions or DataError -----------------------------------------------------
_cells = st.one_of(
    st.text(max_size=8),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "NaN", "inf", "-inf", "1e308", "=SUM(A1)", '"', "\n", "\x00", "2024-01-01", "1,5"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_end_in_interactions_or_a_data_error(raw):
    try:
        result = sniff_and_read(raw)
    except DataError:
        return
    assert isinstance(result, Interactions)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.lists(_cells, min_size=1, max_size=5), min_size=0, max_size=30),
    st.sampled_from([",", ";", "\t", "|"]),
    st.booleans(),
)
def test_arbitrary_small_tables_end_in_interactions_or_a_data_error(rows, delimiter, with_header):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    if with_header:
        writer.writerow(["user", "item", "rating", "timestamp", "title"])
    writer.writerows(rows)
    for payload in (buffer.getvalue().encode("utf-8"), buffer.getvalue().encode("utf-16")):
        try:
            result = sniff_and_read(payload)
        except DataError:
            continue
        assert isinstance(result, Interactions)
