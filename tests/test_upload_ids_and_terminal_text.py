"""Distinct raw ids stay distinct; parquet uploads are bounded by what they decode to; the terminal shows control characters.

* Ids are compared as the file's text unless the column is numeric in the file's own type: "-0" and "0",
  "1١" (Arabic-Indic one) and "11", "1٠" and "10", "1２" (full-width two) and "12" are eight users, and
  the row accounting merges nothing it does not name.
* A parquet upload with repeated column names, or one whose dictionary-encoded text decodes to more than
  MAX_DECOMPRESSED_BYTES, is a DataError before it is decoded.
* ``recommend`` prints titles and ids holding ESC sequences (OSC 52 clipboard writes, clear screen, OSC 8
  links) with their control characters made visible; ``--json`` escapes them as JSON does.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys_core import limits
from recsys_core.datasets import UserFileOptions, read_user_file
from recsys_core.datasets.user_files import read_user_file_with_account
from recsys_core.errors import DataError
from recsys_core.experiment import DataSource, run_experiment
from recsys_core.safe_text import VisibleControls, terminal_text

LOOKALIKES = ["-0", "0", "1\u0661", "11", "1\u0660", "10", "1\uff12", "12"]


def _interactions(users: list[str], n_items: int = 6) -> pd.DataFrame:
    rows = [(user, f"i{j}", 1_000 + 10 * u + j) for u, user in enumerate(users) for j in range(n_items)]
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


def test_lookalike_ids_in_a_csv_stay_distinct_users(tmp_path):
    path = tmp_path / "ids.csv"
    _interactions(LOOKALIKES).to_csv(path, index=False)
    data, account = read_user_file_with_account(path, UserFileOptions("user", "item", timestamp_col="timestamp"))
    assert data.n_users == len(LOOKALIKES) and sorted(map(str, data.users.ids)) == sorted(LOOKALIKES)
    assert account.duplicates_merged == 0 and account.duplicate_text().startswith("none (rule: ")


def test_ids_that_differ_only_in_surrounding_spaces_are_named_in_the_row_accounting(tmp_path):
    path = tmp_path / "spaces.csv"
    path.write_text("user,item\n 1,a\n1,b\n2,a\n2,c\n")
    data, account = read_user_file_with_account(path, UserFileOptions("user", "item"))
    assert data.n_users == 2
    assert account.joined_ids == ("user ' 1' and '1'",)
    assert account.duplicate_text() == "none (rule: keep the latest row); read as one id (surrounding spaces dropped): user ' 1' and '1'"


def test_canonical_ascii_whole_numbers_are_still_numbers(tmp_path):
    path = tmp_path / "ints.csv"
    _interactions(["0", "-3", "12", "7"]).to_csv(path, index=False)
    data = read_user_file(path, UserFileOptions("user", "item"))
    assert data.users.ids.dtype.kind == "i" and sorted(data.users.ids.tolist()) == [-3, 0, 7, 12]


def test_the_row_accounting_names_a_merge_of_repeated_rows(tmp_path):
    path = tmp_path / "repeats.csv"
    frame = _interactions(["a", "b"])
    pd.concat([frame, frame.iloc[:3]]).to_csv(path, index=False)
    data, account = read_user_file_with_account(path, UserFileOptions("user", "item", timestamp_col="timestamp"))
    assert account.duplicates_merged == 3 and account.duplicate_text().startswith("3 merged (")


def test_parquet_ids_numeric_in_the_file_compare_as_numbers_and_text_ids_as_text(tmp_path):
    numeric, text = tmp_path / "numeric.parquet", tmp_path / "text.parquet"
    frame = _interactions(LOOKALIKES)
    pq.write_table(pa.table({"user": pa.array(np.repeat([0, 1, 2, 3, 4, 5, 6, 7], 6), pa.int64()), "item": frame["item"]}), numeric)
    pq.write_table(pa.table({"user": frame["user"], "item": frame["item"]}), text)
    assert read_user_file(numeric, UserFileOptions("user", "item")).n_users == 8
    assert read_user_file(text, UserFileOptions("user", "item")).n_users == 8


def test_a_parquet_upload_with_repeated_column_names_is_a_clear_error(tmp_path):
    path = tmp_path / "repeated.parquet"
    pq.write_table(
        pa.Table.from_arrays([pa.array(["u1", "u2"]), pa.array(["i1", "i2"]), pa.array(["x", "y"])], names=["user", "item", "item"]), path
    )
    with pytest.raises(DataError, match="has repeated column names: 'item'"):
        read_user_file(path, UserFileOptions("user", "item"))


def test_a_parquet_upload_whose_dictionary_decodes_past_the_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "bomb.parquet"
    n = 300_000
    users = pa.array(np.arange(n) % 500, pa.int64())
    pq.write_table(pa.table({"user": users, "item": pa.array(np.arange(n) % 700, pa.int64()), "title": pa.array(["t" * 5_000] * n)}), path)
    assert path.stat().st_size < 1_000_000  # 1.5 GB of text in a file of a few hundred KB
    monkeypatch.setattr(limits, "MAX_DECOMPRESSED_BYTES", 64 << 20)
    with pytest.raises(DataError, match=r"decodes to 1\.4 GiB, more than the 64\.0 MiB allowed"):
        read_user_file(path, UserFileOptions("user", "item", title_col="title"))


# -- terminal escapes -----------------------------------------------------------------------------------------
CLIPBOARD = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
CLEAR = "\x1b[2J\x1b[H"
LINK = "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\"


def _cli(args):
    from recsys_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def escape_run(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{i}", f"{[CLIPBOARD, CLEAR, LINK][i % 3]} title {i}") for u in range(40) for i in rng.choice(150, 15, replace=False)
    ]
    path = tmp_path / "escapes.csv"
    pd.DataFrame(rows, columns=["user", "item", "title"]).to_csv(path, index=False)
    options = UserFileOptions("user", "item", title_col="title")
    data = read_user_file(path, options)
    return run_experiment(data, "pop", "loo-full", device="cpu", source=DataSource.file(path, options)).run_id


def test_recommend_shows_control_characters_instead_of_sending_them(escape_run):
    code, out, err = _cli(["recommend", "--run", escape_run, "--user", "u1", "--k", "20"])
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]52;c;" in out and "\\x1b[2J" in out and "\\x1b]8;;http" in out


def test_recommend_json_escapes_them_as_json_does(escape_run):
    code, out, _ = _cli(["recommend", "--run", escape_run, "--user", "u1", "--json"])
    assert code == 0 and "\x1b" not in out
    assert any(row["title"].startswith(("\x1b]52", "\x1b[2J", "\x1b]8")) for row in json.loads(out))


def test_an_id_with_escapes_in_an_error_message_is_shown_too(escape_run):
    code, out, err = _cli(["recommend", "--run", escape_run, "--user", f"{CLEAR}u1"])
    assert code == 2 and "\x1b" not in err and "\\x1b[2J" in err


def test_terminal_text_keeps_ordinary_text_and_escapes_controls():
    assert terminal_text("Amélie (2001) — 東京") == "Amélie (2001) — 東京"
    assert terminal_text("a\x1b[31mb\x9bc\u202ed\x7f") == "a\\x1b[31mb\\x9bc\\u202ed\\x7f"
    stream = io.StringIO()
    VisibleControls(stream).write("line\tone\nline\rtwo\n")
    assert stream.getvalue() == "line\tone\nline\\rtwo\n"


def test_a_parquet_upload_whose_pages_expand_past_the_limit_is_refused_before_sniffing_or_reading(tmp_path, monkeypatch):
    from recsys_core.datasets import sniff_user_file

    path = tmp_path / "plain-bomb.parquet"
    n = 20_000
    table = pa.table(
        {
            "user": pa.array(np.arange(n) % 50, pa.int64()),
            "item": pa.array(np.arange(n) % 70, pa.int64()),
            "title": pa.array(["t" * 1_000] * n),
        }
    )
    pq.write_table(table, path, use_dictionary=False, compression="zstd")  # 20 MB of plain pages, compressed to little
    assert path.stat().st_size < 1_000_000
    monkeypatch.setattr(limits, "MAX_DECOMPRESSED_BYTES", 4 << 20)
    with pytest.raises(DataError, match=r"plain-bomb.parquet expands to 19\.\d MiB uncompressed, more than the 4\.0 MiB allowed"):
        sniff_user_file(path)
    with pytest.raises(DataError, match=r"expands to 19\.\d MiB uncompressed"):
        read_user_file(path, UserFileOptions("user", "item", title_col="title"))
