"""Every reader on its hand-written fixture, and on the real data beside the checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_core.datasets import (
    read_drugscom,
    read_ml1m,
    read_ml100k,
    read_movielens_csv,
    read_recbole_ml100k,
)
from recsys_core.errors import DataError

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _same_interactions(a, b) -> None:
    assert np.array_equal(a.users.ids, b.users.ids)
    assert np.array_equal(a.items.ids, b.items.ids)
    for field in ("user", "item", "rating", "timestamp"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert a.content_hash() == b.content_hash()


# -- MovieLens 100K ------------------------------------------------------------------------------
def test_ml100k_fixture():
    data = read_ml100k(FIXTURES / "ml-100k")
    assert data.name == "ml-100k"
    assert len(data) == 21 and data.n_users == 12 and data.n_items == 6
    assert data.users.ids.dtype.kind == "i" and data.items.ids.dtype.kind == "i"
    assert data.rating.dtype == np.float32 and data.timestamp.dtype == np.int64
    # file order is kept
    assert data.users.raw(data.user[0]) == 7 and data.items.raw(data.item[0]) == 543
    assert data.timestamp[0] == 891351772 and data.rating[0] == 3

    info = data.item_info.set_index(pd.Index(data.items.ids))
    assert list(data.item_info.columns) == ["title", "genres", "year", "release_date"]
    assert info.loc[543, "title"] == "Misérables, Les (1995)"  # latin-1 decoded
    assert info.loc[1005, "title"].startswith("Double vie de Véronique")
    assert info.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert info.loc[50, "genres"] == "Action|Adventure|Romance|Sci-Fi|War"
    assert info.loc[242, "year"] == 1996  # the title's year, though released 24-Jan-1997
    assert info.loc[242, "release_date"] == "1997-01-24"
    assert info.loc[267, "title"] == "unknown" and info.loc[267, "genres"] == ""
    assert pd.isna(info.loc[267, "year"]) and pd.isna(info.loc[267, "release_date"])
    assert str(data.item_info["year"].dtype) == "Int64"

    users = data.user_info.set_index(pd.Index(data.users.ids))
    assert list(data.user_info.columns) == ["age", "gender", "occupation", "zip"]
    assert users.loc[1, "occupation"] == "technician" and users.loc[8, "zip"] == "05201"  # zips stay text


def test_ml100k_real(ml100k):
    assert (ml100k.n_users, ml100k.n_items, len(ml100k)) == (943, 1682, 100_000)
    assert ml100k.name == "ml-100k"
    assert set(np.unique(ml100k.rating)) == {1, 2, 3, 4, 5}
    info = ml100k.item_info
    assert info["title"].notna().all() and info["year"].notna().sum() == 1681
    assert info.loc[0, "title"] == "Toy Story (1995)"
    assert (info["genres"] != "").sum() >= 1680
    assert ml100k.user_info["age"].between(7, 73).all()


def test_ml100k_missing_files_are_named(tmp_path):
    with pytest.raises(DataError, match="u.data") as err:
        read_ml100k(tmp_path)
    assert err.value.hint
    with pytest.raises(DataError, match="does not exist"):
        read_ml100k(tmp_path / "nowhere")


def test_ml100k_found_in_a_lone_subfolder(tmp_path):
    shutil.copytree(FIXTURES / "ml-100k", tmp_path / "ml-100k")
    assert len(read_ml100k(tmp_path)) == 21


def test_ml100k_damaged_file(tmp_path):
    shutil.copytree(FIXTURES / "ml-100k", tmp_path, dirs_exist_ok=True)
    (tmp_path / "u.data").write_text("1\t2\tthree\t4\n")
    with pytest.raises(DataError, match="u.data"):
        read_ml100k(tmp_path)


# -- RecBole -------------------------------------------------------------------------------------
def test_recbole_fixture_equals_grouplens_fixture():
    grouplens = read_ml100k(FIXTURES / "ml-100k")
    recbole = read_recbole_ml100k(FIXTURES / "recbole-ml-100k")
    _same_interactions(grouplens, recbole)
    assert recbole.name == "ml-100k"
    pd.testing.assert_frame_equal(grouplens.user_info, recbole.user_info)
    a, b = grouplens.item_info, recbole.item_info
    assert (a["title"] == b["title"]).all()  # "Title (year)" rebuilt; "unkonwn" read as "unknown"
    assert (a["genres"] == b["genres"]).all()
    assert a["year"].astype("Float64").equals(b["year"].astype("Float64"))
    assert b["release_date"].isna().all()


def _to_recbole(folder: Path, out: Path) -> None:
    """Write GroupLens u.data / u.user as RecBole atomic files (as RecBole's own conversion does)."""
    out.mkdir()
    data = pd.read_csv(folder / "u.data", sep="\t", header=None, names=["u", "i", "r", "t"])
    with open(out / "ml-100k.inter", "w") as f:
        f.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        data.to_csv(f, sep="\t", header=False, index=False)
    users = pd.read_csv(folder / "u.user", sep="|", header=None, dtype=str)
    with open(out / "ml-100k.user", "w") as f:
        f.write("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n")
        users.to_csv(f, sep="\t", header=False, index=False)


def test_recbole_equals_grouplens_on_real_ml100k(ml100k, ml100k_dir, tmp_path):
    _to_recbole(ml100k_dir, tmp_path / "rb")
    recbole = read_recbole_ml100k(tmp_path / "rb")
    _same_interactions(ml100k, recbole)
    pd.testing.assert_frame_equal(ml100k.user_info, recbole.user_info)
    assert recbole.item_info is None  # no .item file written here


def test_recbole_bad_header(tmp_path):
    (tmp_path / "ml-100k.inter").write_text("uid:token\tiid:token\n1\t2\n")
    with pytest.raises(DataError, match="user_id"):
        read_recbole_ml100k(tmp_path)


# -- MovieLens 1M ------------------------------------------------------------------------------------
def test_ml1m_fixture():
    data = read_ml1m(FIXTURES / "ml-1m")
    assert data.name == "ml-1m"
    assert len(data) == 12 and data.n_users == 5 and data.n_items == 7
    assert data.timestamp[0] == 978300760 and data.rating[0] == 5
    info = data.item_info.set_index(pd.Index(data.items.ids))
    assert info.loc[73, "title"] == "Misérables, Les (1995)"
    assert info.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert info.loc[1193, "year"] == 1975
    assert pd.isna(info.loc[661, "title"])  # rated but not in movies.dat
    users = data.user_info.set_index(pd.Index(data.users.ids))
    assert users.loc[1, "occupation"] == "K-12 student"
    assert users.loc[2, "occupation"] == "self-employed"
    assert users.loc[5, "occupation"] == "writer"
    assert users.loc[4, "zip"] == "02460" and users.loc[2, "age"] == 56 and users.loc[1, "gender"] == "F"
    assert list(data.user_info.columns) == ["age", "gender", "occupation", "zip"]


# -- MovieLens CSV ----------------------------------------------------------------------------------
def test_movielens_csv_fixture():
    data = read_movielens_csv(FIXTURES / "ml-latest-small")
    assert data.name == "ml-latest-small"
    assert len(data) == 8 and data.n_users == 3 and data.n_items == 5
    assert data.rating.dtype == np.float32 and data.rating[4] == 0.5
    info = data.item_info.set_index(pd.Index(data.items.ids))
    assert info.loc[11, "title"] == "American President, The (1995)"  # quoted, with a comma
    assert info.loc[73, "title"] == "Misérables, Les (1995)"
    assert info.loc[114335, "genres"] == ""  # "(no genres listed)"
    assert info.loc[1, "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert info.loc[160644, "year"] == 2016 and info.loc[114335, "year"] == 1957
    assert data.user_info is None


def test_movielens_csv_name_and_bad_header(tmp_path):
    folder = tmp_path / "ml-25m"
    shutil.copytree(FIXTURES / "ml-latest-small", folder)
    assert read_movielens_csv(folder).name == "ml-25m"
    assert read_movielens_csv(folder, name="x").name == "x"
    (folder / "ratings.csv").write_text("user,movie,stars\n1,2,3\n")
    with pytest.raises(DataError, match="userId"):
        read_movielens_csv(folder)


# -- Drugs.com ----------------------------------------------------------------------------------------
def test_drugscom_uci_fixture():
    data = read_drugscom(FIXTURES / "drugscom-raw")
    assert data.name == "drugscom"
    # 14 reviews; one without a condition and one "</span>" artefact are dropped
    assert len(data) == 12
    assert data.users.kind == "condition" and data.items.kind == "drug"
    conditions = set(data.users.ids)
    assert "Not Listed / Other" in conditions and "Crohn's Disease, Maintenance" in conditions  # "Othe" restored
    assert not any("</span>" in c for c in conditions)
    assert data.rating.dtype == np.float32 and set(data.rating) <= set(range(1, 11))
    assert "rating_label" not in data.extra

    frame = data.to_frame()
    first = frame.iloc[0]
    assert first["user"] == "Left Ventricular Dysfunction" and first["item"] == "Valsartan"
    assert first["review"] == "It has no side effect, I take it in combination of Bystolic 5 Mg and Fish Oil"
    assert first["timestamp"] == 1337472000  # May 20, 2012
    assert first["weight"] == 27 and first["useful"] == 27 and first["review_id"] == 206461
    reviews = list(frame["review"])
    assert "We didn't see much change at first & then it worked." in reviews[1]
    assert reviews[2] == "I used to take another oral contraceptive.\r\n\r\nIt’s been fine since."  # multi-line, &rsquo;
    assert not any("&#039;" in r or "&quot;" in r or r.startswith('"') for r in reviews)

    info = data.item_info.set_index(pd.Index(data.items.ids))
    assert list(data.item_info.columns) == ["title", "top_condition", "reviews"]
    assert info.loc["Valsartan", "title"] == "Valsartan"
    assert info.loc["Valsartan", "top_condition"] == "Left Ventricular Dysfunction"
    users = data.user_info.set_index(pd.Index(data.users.ids))
    assert users.loc["Birth Control", "reviews"] == 3
    assert data.item_info["reviews"].sum() == len(data) == data.user_info["reviews"].sum()


def test_drugscom_kaggle_csv_fixture():
    data = read_drugscom(FIXTURES / "drugscom-kaggle", name="drugs-kaggle")
    assert data.name == "drugs-kaggle" and len(data) == 4
    frame = data.to_frame()
    assert frame.loc[0, "timestamp"] == 1337472000  # 20-May-12
    assert frame.loc[1, "review"].endswith("We didn't see much change at first.")
    assert set(frame["review_id"]) == {206461, 95260, 92703, 163740}


def test_drugscom_same_data_from_uci_and_kaggle_forms():
    uci = read_drugscom(FIXTURES / "drugscom-raw").to_frame().set_index("review_id")
    kaggle = read_drugscom(FIXTURES / "drugscom-kaggle").to_frame().set_index("review_id")
    for rid in (206461, 163740):
        for col in ("user", "item", "rating", "timestamp", "weight"):
            assert uci.loc[rid, col] == kaggle.loc[rid, col]


def test_drugscom_single_file_and_errors(tmp_path):
    single = read_drugscom(FIXTURES / "drugscom-raw" / "drugsComTest_raw.tsv")
    assert len(single) == 5
    with pytest.raises(DataError, match="no Drugs.com review files"):
        read_drugscom(tmp_path)
    (tmp_path / "drugsComTrain.tsv").write_text(
        '\tdrugName\tcondition\treview\trating\tdate\tusefulCount\n1\tX\tPain\t"ok"\tgreat\tMay 1, 2017\t1\n'
    )
    with pytest.raises(DataError, match="'great'.*row 1"):
        read_drugscom(tmp_path)
    (tmp_path / "drugsComTrain.tsv").write_text('\tdrugName\tcondition\treview\trating\tdate\tusefulCount\n1\tX\tPain\t"ok"\t5\tsoon\t1\n')
    with pytest.raises(DataError, match="unreadable date 'soon'"):
        read_drugscom(tmp_path)
    (tmp_path / "drugsComTrain.tsv").write_text("\tdrugName\tcondition\n1\tX\tPain\n")
    with pytest.raises(DataError, match="lacks the column"):
        read_drugscom(tmp_path)


def test_drugscom_sample_real(drugs_sample):
    data = drugs_sample
    assert data.name == "drugscom-sample"
    # 979 reviews; 7 have no condition and 7 carry a "</span>" artefact instead of one
    assert len(data) == 979 - 14
    assert 150 <= data.n_users <= 200 and 400 <= data.n_items <= 500
    assert not any("</span>" in c for c in data.users.ids)
    labels = data.extra["rating_label"]
    assert set(labels) == {"negative", "neutral", "positive"}
    expected = pd.Series(labels).map({"negative": 2.5, "neutral": 5.5, "positive": 8.5}).to_numpy()
    assert np.array_equal(data.rating, expected.astype(np.float32))
    reviews = pd.Series(data.extra["review"])
    assert not reviews.str.contains("&#039;|&amp;|&quot;|&rsquo;").any()
    assert not reviews.str.startswith('"').any() and (reviews.str.len() > 0).all()
    assert reviews.str.contains("'").any()
    # dates between the first and last Drugs.com review (2008-2017), as UTC midnights
    assert data.timestamp.min() >= 1199145600 and data.timestamp.max() < 1514764800
    assert (data.timestamp % 86400 == 0).all()
    assert data.item_info["reviews"].sum() == len(data)
    assert data.weight is not None and np.array_equal(data.weight, data.extra["useful"])


def test_movielens_csv_empty_cell(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,,4\n")
    with pytest.raises(DataError, match="empty cells"):
        read_movielens_csv(tmp_path)
