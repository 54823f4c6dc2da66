"""User files: sniffing, reading, filters, and a clear message for every kind of bad file."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.datasets import UserFileOptions, read_user_file, sniff_user_file
from recsys_core.errors import DataError

FILES = Path(__file__).resolve().parent / "fixtures" / "user_files"
MOVIE_OPTIONS = UserFileOptions("userId", "movieId", rating_col="rating", timestamp_col="timestamp", title_col="title")


def _titles(data) -> dict:
    return dict(zip(data.items.ids.tolist(), data.item_titles().tolist(), strict=True))


# -- sniffing ------------------------------------------------------------------------------------
def test_sniff_utf8_csv():
    info = sniff_user_file(FILES / "ratings_utf8.csv")
    assert info["format"] == "csv" and info["delimiter"] == "," and info["encoding"] == "utf-8"
    assert info["header"] is True and info["warnings"] == []
    assert info["columns"] == ["userId", "movieId", "rating", "timestamp", "title"]
    assert info["guesses"] == {
        "user": "userId",
        "item": "movieId",
        "rating": "rating",
        "timestamp": "timestamp",
        "weight": None,
        "title": "title",
    }
    preview = info["preview"]
    assert isinstance(preview, pd.DataFrame) and len(preview) == 6
    assert preview.loc[1, "title"].startswith("Amélie")


def test_sniff_bom_latin1_semicolon_tsv():
    assert sniff_user_file(FILES / "ratings_bom.csv")["encoding"] == "utf-8-sig"
    assert sniff_user_file(FILES / "ratings_bom.csv")["columns"][0] == "userId"  # no BOM in the name
    latin = sniff_user_file(FILES / "movies_latin1.tsv")
    assert latin["delimiter"] == "\t" and latin["encoding"] in ("latin-1", "cp1252")
    assert latin["preview"].loc[0, "title"] == "Misérables, Les (1995)"
    semi = sniff_user_file(FILES / "purchases_semicolon.csv")
    assert semi["delimiter"] == ";"
    assert semi["guesses"]["user"] == "customer" and semi["guesses"]["item"] == "product"
    assert semi["guesses"]["rating"] == "score" and semi["guesses"]["timestamp"] == "date"
    plays = sniff_user_file(FILES / "plays.tsv")
    assert plays["guesses"]["user"] == "user_id" and plays["guesses"]["item"] == "track"
    assert plays["guesses"]["weight"] == "plays" and plays["guesses"]["timestamp"] == "when"


def test_sniff_bytes_and_headerless():
    info = sniff_user_file((FILES / "no_header.tsv").read_bytes())
    assert info["header"] is False and info["columns"] == ["column_1", "column_2", "column_3", "column_4"]
    assert info["guesses"]["user"] == "column_1" and info["guesses"]["timestamp"] == "column_4"
    assert len(info["preview"]) == 3


def test_sniff_drugs_names():
    text = b'uniqueID,drugName,condition,review,rating,date,usefulCount\n1,X,Pain,ok,9,"May 1, 2017",3\n'
    guesses = sniff_user_file(text)["guesses"]
    assert guesses["user"] == "condition" and guesses["item"] == "drugName"
    assert guesses["rating"] == "rating" and guesses["timestamp"] == "date" and guesses["weight"] == "usefulCount"


def test_sniff_single_column_warns():
    info = sniff_user_file(FILES / "colons.txt")
    assert info["columns"] == ["user:item:rating"]
    assert "delimiter" in info["warnings"][0]


# -- reading ---------------------------------------------------------------------------------------
def test_read_utf8_csv():
    data = read_user_file(FILES / "ratings_utf8.csv", MOVIE_OPTIONS)
    assert data.name == "ratings_utf8"
    assert len(data) == 6 and data.n_users == 3 and data.n_items == 3
    assert data.users.ids.dtype.kind == "i" and data.items.ids.dtype.kind == "i"
    assert data.rating.dtype == np.float32 and data.timestamp.dtype == np.int64
    assert data.timestamp[0] == 964982703
    assert _titles(data)[4973].startswith("Amélie (Fabuleux")
    assert _titles(data)[2571] == "Matrix, The (1999)"


def test_bom_gives_the_same_data():
    a = read_user_file(FILES / "ratings_utf8.csv", MOVIE_OPTIONS)
    b = read_user_file(FILES / "ratings_bom.csv", MOVIE_OPTIONS, name="bom")
    assert a.content_hash() == b.content_hash() and _titles(a) == _titles(b) and b.name == "bom"


def test_read_latin1_tsv():
    data = read_user_file(FILES / "movies_latin1.tsv", UserFileOptions("user", "item", rating_col="rating", title_col="title"))
    assert _titles(data)[543] == "Misérables, Les (1995)"
    assert _titles(data)[1005] == "Double vie de Véronique, La (1991)"


def test_read_semicolon_with_decimal_commas_and_dates():
    options = UserFileOptions("customer", "product", rating_col="score", timestamp_col="date")
    data = read_user_file(FILES / "purchases_semicolon.csv", options)
    assert data.users.ids.tolist() == ["anna", "ben", "carla"]
    assert data.rating.tolist() == [4.5, 2.0, 5.0, 3.5, 4.0]
    assert data.timestamp[0] == 1709251200  # 2024-03-01 00:00 UTC


def test_read_bytes_file_object_and_gzip():
    raw = (FILES / "ratings_utf8.csv").read_bytes()
    expected = read_user_file(FILES / "ratings_utf8.csv", MOVIE_OPTIONS).content_hash()
    assert read_user_file(raw, MOVIE_OPTIONS).content_hash() == expected
    assert read_user_file(raw, MOVIE_OPTIONS).name == "upload"
    assert read_user_file(io.BytesIO(raw), MOVIE_OPTIONS).content_hash() == expected
    assert read_user_file(gzip.compress(raw), MOVIE_OPTIONS).content_hash() == expected


def test_read_parquet(tmp_path):
    frame = pd.DataFrame(
        {
            "user": ["a", "a", "b"],
            "item": [1, 2, 1],
            "stars": [5.0, 3.0, 4.0],
            "at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        }
    )
    path = tmp_path / "events.bin"  # no extension: found by the PAR1 magic bytes
    frame.to_parquet(path)
    info = sniff_user_file(path)
    assert info["format"] == "parquet" and info["columns"] == ["user", "item", "stars", "at"]
    assert info["guesses"]["rating"] == "stars"
    data = read_user_file(path, UserFileOptions("user", "item", rating_col="stars", timestamp_col="at"))
    assert len(data) == 3 and data.items.ids.tolist() == [1, 2]
    assert data.timestamp.tolist() == [1704067200, 1704153600, 1704240000]
    assert read_user_file(path.read_bytes(), UserFileOptions("user", "item")).n_users == 2


def test_headerless_file_by_position():
    data = read_user_file(FILES / "no_header.tsv", UserFileOptions("column_1", "column_2", rating_col="column_3", timestamp_col="column_4"))
    assert len(data) == 3 and data.timestamp[0] == 881250949 and data.users.ids.tolist() == [22, 186, 196]


def test_explicit_delimiter_for_an_unusual_file():
    data = read_user_file(FILES / "colons.txt", UserFileOptions("user", "item", rating_col="rating", delimiter=":"))
    assert len(data) == 2 and data.rating.tolist() == [5.0, 3.0]


def test_ids_with_leading_zeros_stay_text():
    data = read_user_file(b"user,item\n007,1\n7,2\n", UserFileOptions("user", "item"))
    assert data.users.ids.tolist() == ["007", "7"]


def test_millisecond_timestamps():
    data = read_user_file(b"u,i,t\n1,2,1700000000123\n", UserFileOptions("u", "i", timestamp_col="t"))
    assert data.timestamp.tolist() == [1700000000]


# -- filters --------------------------------------------------------------------------------------------
def test_threshold_keeps_high_ratings():
    options = UserFileOptions("userId", "movieId", rating_col="rating", threshold=4.0)
    data = read_user_file(FILES / "ratings_utf8.csv", options)
    assert len(data) == 4 and (data.rating >= 4).all()


def test_duplicates_latest_by_timestamp():
    options = UserFileOptions("user_id", "track", weight_col="plays", timestamp_col="when")
    data = read_user_file(FILES / "plays.tsv", options)
    frame = data.to_frame().set_index(["user", "item"])
    assert len(data) == 4
    assert frame.loc[("u1", "t1"), "weight"] == 3  # 2024-01-05 beats 2024-01-01, though listed first
    assert frame.loc[("u2", "t2"), "weight"] == 1  # 2024-01-06


def test_duplicates_latest_without_timestamp_is_last_in_file():
    data = read_user_file(FILES / "plays.tsv", UserFileOptions("user_id", "track", weight_col="plays"))
    frame = data.to_frame().set_index(["user", "item"])
    assert frame.loc[("u1", "t1"), "weight"] == 2 and frame.loc[("u2", "t2"), "weight"] == 1


def test_duplicates_sum():
    options = UserFileOptions("user_id", "track", weight_col="plays", timestamp_col="when", duplicates="sum")
    frame = read_user_file(FILES / "plays.tsv", options).to_frame().set_index(["user", "item"])
    assert frame.loc[("u1", "t1"), "weight"] == 5 and frame.loc[("u2", "t2"), "weight"] == 6
    assert frame.loc[("u1", "t1"), "timestamp"] == 1704448800  # the latest row's time
    with pytest.raises(DataError, match="summing repeated .* needs a weight column") as error:
        UserFileOptions("user_id", "track", duplicates="sum")
    assert "count the rows" in error.value.hint


def test_duplicates_count():
    counts = read_user_file(FILES / "plays.tsv", UserFileOptions("user_id", "track", duplicates="count")).to_frame()
    assert counts.set_index(["user", "item"]).loc[("u1", "t1"), "weight"] == 2  # rows counted without weights


def test_old_records_summing_without_weights_read_as_count():
    """Before "count", "sum" without a weight column summed a weight of 1 per row: the same numbers."""
    old = {"user_col": "user_id", "item_col": "track", "weight_col": None, "duplicates": "sum"}
    options = UserFileOptions.from_json(old)
    assert options.duplicates == "count"
    frame = read_user_file(FILES / "plays.tsv", options).to_frame().set_index(["user", "item"])
    assert frame["weight"].to_dict() == {("u1", "t1"): 2, ("u1", "t2"): 1, ("u2", "t1"): 1, ("u2", "t2"): 2}
    assert UserFileOptions.from_json({**old, "weight_col": "plays"}).duplicates == "sum"


# A hand-worked file: (c1, p1) has three rows (the latest on 01-03 with quantity 5, stars 4), (c2, p2)
# two rows on the same day (file order breaks the tie: the second, quantity 2, stars 4).
ORDERS = (
    b"customer,product,quantity,stars,day\n"
    b"c1,p1,2,3,2024-01-01\n"
    b"c1,p1,5,4,2024-01-03\n"
    b"c1,p1,1,2,2024-01-02\n"
    b"c1,p2,3,5,2024-01-01\n"
    b"c2,p1,4,1,2024-01-05\n"
    b"c2,p2,1,3,2024-01-04\n"
    b"c2,p2,2,4,2024-01-04\n"
)


@pytest.mark.parametrize(
    ("rule", "weights", "text"),
    [
        ("latest", {("c1", "p1"): 5, ("c1", "p2"): 3, ("c2", "p1"): 4, ("c2", "p2"): 2}, "3 merged (keep the latest row)"),
        (
            "sum",
            {("c1", "p1"): 8, ("c1", "p2"): 3, ("c2", "p1"): 4, ("c2", "p2"): 3},
            "3 merged (keep the latest row, sum the weight column 'quantity')",
        ),
        (
            "count",
            {("c1", "p1"): 3, ("c1", "p2"): 1, ("c2", "p1"): 1, ("c2", "p2"): 2},
            "3 merged (keep the latest row, weight = number of rows)",
        ),
    ],
)
def test_each_duplicate_rule_on_a_hand_worked_file(rule, weights, text):
    from recsys_core.datasets.user_files import read_user_file_with_account

    options = UserFileOptions("customer", "product", rating_col="stars", timestamp_col="day", weight_col="quantity", duplicates=rule)
    data, account = read_user_file_with_account(ORDERS, options, name="orders")
    frame = data.to_frame().set_index(["user", "item"])
    assert frame["weight"].to_dict() == weights
    # Every rule keeps the latest row's rating and time.
    assert frame.loc[("c1", "p1"), "rating"] == 4 and frame.loc[("c2", "p2"), "rating"] == 4
    assert frame.loc[("c1", "p1"), "timestamp"] == 1704240000  # 2024-01-03
    assert (account.rows_read, account.duplicates_merged, account.kept, account.duplicate_rule) == (7, 3, 4, rule)
    assert account.duplicate_text() == text


def test_the_account_names_the_rule_when_nothing_repeats():
    from recsys_core.datasets.user_files import read_user_file_with_account

    _, account = read_user_file_with_account(b"u,i\n1,2\n1,3\n", UserFileOptions("u", "i"))
    assert account.duplicate_text() == "none (rule: keep the latest row)"


def test_kcore_iterates_until_stable():
    options = UserFileOptions("user", "item", min_user_interactions=2, min_item_interactions=2)
    data = read_user_file(FILES / "kcore.csv", options)
    # round 1 drops u4 and i4; u3 is then left with one interaction and goes in round 2
    assert data.users.ids.tolist() == ["u1", "u2"] and data.items.ids.tolist() == ["i1", "i2", "i3"]
    assert len(data) == 6
    counts = read_user_file(FILES / "kcore.csv", UserFileOptions("user", "item", min_user_interactions=3))
    assert counts.users.ids.tolist() == ["u1", "u2"]


# -- bad files --------------------------------------------------------------------------------------------
def _error(source, options=UserFileOptions("user", "item")) -> DataError:
    with pytest.raises(DataError) as err:
        read_user_file(source, options)
    assert err.value.hint, "every message says how to fix it"
    return err.value


def test_empty_file():
    assert "empty" in _error(FILES / "empty.csv").message
    assert "empty" in _error(b"   \n\n").message


def test_header_without_rows():
    assert "no rows" in _error(FILES / "header_only.csv").message


def test_missing_column_lists_available():
    err = _error(FILES / "ratings_utf8.csv", UserFileOptions("user", "movieId"))
    assert "'user'" in err.message and "userId, movieId, rating, timestamp, title" in err.hint


def test_non_numeric_rating_names_row_and_value():
    err = _error(FILES / "bad_rating.csv", UserFileOptions("user", "item", rating_col="rating"))
    assert "'four'" in err.message and "row 3" in err.message


BLANK_RATINGS = b"user,item,stars\n1,10,5\n1,11, \n2,10,4\n2,12,\n3,11,3\n3,12,\n1,12,2\n"


@pytest.mark.parametrize("raw", [BLANK_RATINGS, pd.read_csv(io.BytesIO(BLANK_RATINGS)).to_parquet()], ids=["csv", "parquet"])
def test_blank_ratings_are_refused_with_their_count_or_dropped_and_accounted(raw):
    from recsys_core.datasets.user_files import read_user_file_with_account

    err = _error(raw, UserFileOptions("user", "item", rating_col="stars"))
    assert "row 3" in err.message and "and 2 more rows" in err.message, err.message
    assert "drop the 3 rows with a blank rating" in err.hint
    options = UserFileOptions("user", "item", rating_col="stars", threshold=3, drop_blank_ratings=True)
    data, account = read_user_file_with_account(raw, options)
    assert sorted(data.to_frame()["rating"].tolist()) == [3, 4, 5]
    assert (account.rows_read, account.blank_ratings_dropped, account.duplicates_merged, account.below_threshold, account.kept) == (
        7,
        3,
        0,
        1,
        3,
    )
    # A bad rating in a row that is not blank is still refused, naming its row.
    bad = _error(BLANK_RATINGS + b"4,10,five\n", options)
    assert "'five'" in bad.message and "row 9" in bad.message
    with pytest.raises(DataError, match="needs a rating column"):
        UserFileOptions("user", "item", drop_blank_ratings=True)
    assert "blank" in _error(b"user,item,stars\n1,10,\n2,11,\n", options).message


def test_unparseable_date_names_row():
    err = _error(FILES / "bad_date.csv", UserFileOptions("user", "item", timestamp_col="date"))
    assert "'yesterday'" in err.message and "row 3" in err.message


def test_threshold_filters_everything():
    err = _error(FILES / "ratings_utf8.csv", UserFileOptions("userId", "movieId", rating_col="rating", threshold=6))
    assert "6 rows read" in err.message and "0 with rating >= 6" in err.message
    assert "2 to 5" in err.hint


def test_kcore_filters_everything():
    err = _error(FILES / "kcore.csv", UserFileOptions("user", "item", min_user_interactions=5))
    assert "9 rows read" in err.message and "0 after k-core round 1" in err.message
    assert "Lower" in err.hint


def test_single_column_because_of_the_delimiter():
    err = _error(FILES / "colons.txt")
    assert "single column" in err.message and "delimiter" in err.hint


def test_binary_garbage(tmp_path):
    garbage = bytes(range(256)) * 8
    assert "binary" in _error(garbage).message
    path = tmp_path / "fake.parquet"
    path.write_bytes(b"PAR1 not really parquet")
    assert "parquet" in _error(path).message
    xlsx = tmp_path / "sheet.xlsx"
    xlsx.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert "Excel" in _error(xlsx).message


def test_missing_ids_and_paths(tmp_path):
    err = _error(b"user,item\n1,2\n,3\n")
    assert "user column 'user' is empty in row 3" in err.message
    assert "does not exist" in _error(tmp_path / "nope.csv").message
    assert "folder" in _error(tmp_path).message


def test_bad_options():
    with pytest.raises(DataError, match="'latest', 'sum' or 'count'"):
        UserFileOptions("u", "i", duplicates="max")
    with pytest.raises(DataError, match="rating column"):
        UserFileOptions("u", "i", threshold=3)
    with pytest.raises(DataError, match="two different"):
        UserFileOptions("u", "u")
    with pytest.raises(DataError, match="whole number"):
        UserFileOptions("u", "i", min_user_interactions=-1)
    with pytest.raises(DataError, match="unknown encoding"):
        UserFileOptions("u", "i", encoding="klingon")


def test_crlf_and_trailing_delimiters():
    data = read_user_file(b"user,item,rating,\r\n1,10,4,\r\n2,11,5,\r\n", UserFileOptions("user", "item", rating_col="rating"))
    assert data.users.ids.tolist() == [1, 2] and data.rating.tolist() == [4.0, 5.0]


def test_ragged_rows_are_reported():
    err = _error(b"user,item\n5,6\n1,2,3,4\n")
    assert "line 3" in err.message and "delimiter" in err.hint


def test_sniff_shows_a_ragged_file_with_a_warning():
    info = sniff_user_file(b"user,item\n5,6\n1,2,3,4\n7,8\n")
    assert info["preview"]["user"].tolist() == ["5", "7"]
    assert "line 3" in info["warnings"][0]


def test_reading_reports_its_steps_in_order():
    heard = []
    options = UserFileOptions("customer", "product", weight_col="quantity", duplicates="sum", min_user_interactions=1)
    read_user_file(ORDERS, options, display_name="orders.csv", progress=lambda fraction, text: heard.append((fraction, text)))
    fractions = [fraction for fraction, _ in heard]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] < 1.0
    assert heard[0][1] == "reading orders.csv"
    assert any("sum the weight column" in text for _, text in heard) and heard[-1][1] == "indexing 4 interactions"
