"""Storing user files: one content-hash name for the app and the command line, atomic writes, old
copies still found, and messages that name the file as the person knows it."""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import pytest

from recsys_core.datasets import UserFileOptions, read_user_file, store_user_file
from recsys_core.datasets.source import DataSource
from recsys_core.datasets.user_files import storing
from recsys_core.errors import DataError
from recsys_core.home import clean_stale_staging, data_home, uploads_dir

REPO = Path(__file__).resolve().parents[1]
FILES = REPO / "tests" / "fixtures" / "user_files"
RATINGS = (FILES / "ratings_utf8.csv").read_bytes()


def _entries() -> list[str]:
    return sorted(p.name for p in uploads_dir().iterdir())


def test_same_content_same_name_stored_once():
    first = store_user_file(RATINGS, display_name="ratings.csv")
    second = store_user_file(RATINGS, display_name="my ratings (copy).CSV")
    digest = hashlib.sha256(RATINGS).hexdigest()
    assert first.path.name == f"{digest[:32]}.csv" and first.sha256 == digest and first.size == len(RATINGS)
    assert first.created and not second.created and second.path == first.path
    assert second.display_name == "my ratings (copy).CSV"
    assert _entries() == [first.path.name], "stored once, and no staging file is left"
    assert first.path.read_bytes() == RATINGS


def test_a_path_a_file_object_and_bytes_get_the_same_name(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_bytes(RATINGS)
    from_path = store_user_file(path)
    assert from_path.display_name == "ratings.csv"
    assert store_user_file(io.BytesIO(RATINGS), display_name="ratings.csv").path == from_path.path
    assert store_user_file(RATINGS, display_name="ratings.csv").path == from_path.path
    # The type ending is part of the name (a Drugs.com .csv is comma-separated, its .tsv not);
    # nothing else of the original name reaches the file system.
    assert store_user_file(RATINGS, display_name="../../etc/x.tsv.gz").path.name.endswith(".tsv.gz")
    assert storing.stored_ending("notes") == "" and storing.stored_ending("a.b.parquet") == ".parquet"


def test_a_crash_mid_write_leaves_no_partial_file(monkeypatch):
    class Broken(io.BytesIO):
        """A source that fails after its first chunk, like a connection or a disk that goes away."""

        def read(self, size=-1):
            if self.tell() > 0:
                raise OSError("the source went away")
            return super().read(size)

    big = RATINGS * (2 * storing._CHUNK // len(RATINGS) + 1)
    with pytest.raises(OSError, match="went away"):
        store_user_file(Broken(big), display_name="big.csv")
    assert _entries() == []

    during = []

    def no_fsync(fd):
        during.extend(_entries())
        raise KeyboardInterrupt  # interrupted between writing and renaming

    monkeypatch.setattr(storing.os, "fsync", no_fsync)
    with pytest.raises(KeyboardInterrupt):
        store_user_file(RATINGS, display_name="ratings.csv")
    assert _entries() == []
    # While it was written, only a staging file existed, named as the home's cleaner expects
    # (uploads/.upload-<pid>-*), so a kill (where no cleanup runs) leaves nothing it cannot remove.
    assert len(during) == 1 and re.match(rf"^\.upload-{os.getpid()}-", during[0]), during


def test_a_killed_writers_staging_file_is_cleaned_and_never_read_as_a_copy():
    # A process killed mid-write (no finally runs) leaves its dot-named staging file: the final name
    # never holds partial content, and the home's cleaner removes it once its writer is gone.
    dead_pid = 2**22 + 12345
    staging = uploads_dir() / f".upload-{dead_pid}-abc123"
    staging.write_bytes(RATINGS[:10])
    stored = store_user_file(RATINGS, display_name="ratings.csv")
    assert stored.created and stored.path.read_bytes() == RATINGS
    assert staging in clean_stale_staging(data_home())
    assert _entries() == [stored.path.name]


def test_too_large_and_missing_files_are_refused(monkeypatch, tmp_path):
    from recsys_core import limits

    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 100)
    with pytest.raises(DataError, match="ratings.csv has .* more than the limit"):
        store_user_file(RATINGS, display_name="ratings.csv")
    with pytest.raises(DataError, match="no file at"):
        store_user_file(tmp_path / "nope.csv")
    assert _entries() == []


def test_cli_and_app_store_the_same_bytes_under_the_same_name(tmp_path):
    from recsys_core.cli import _import_user_file
    from webapp import data_ui

    # Enough rows for train --csv's protocol check: 20 users with 6 items each.
    content = (
        "user,item,rating,timestamp\n"
        + "".join(f"u{u},i{(u + i) % 9},{1 + (u * i) % 5},{1000 * u + i}\n" for u in range(20) for i in range(6))
    ).encode()
    path = tmp_path / "ratings.csv"
    path.write_bytes(content)
    options = UserFileOptions("user", "item", rating_col="rating", timestamp_col="timestamp")
    source, _data = _import_user_file(str(path), options, "loo-full")
    upload, _sniff = data_ui.accept_upload(content, "ratings.csv")
    assert Path(source.path) == Path(upload.path)
    assert source.display_name == "ratings.csv"
    assert _entries() == [Path(upload.path).name]


def test_copies_stored_under_the_old_names_are_found_and_read():
    digest = hashlib.sha256(RATINGS).hexdigest()
    folder = uploads_dir()
    old_app = folder / f"{digest[:16]}-ratings_utf8.csv"  # the app's name before store_user_file
    old_cli = folder / f"ratings_utf8-{digest[:12]}.csv"  # train --csv's name before it
    old_app.write_bytes(RATINGS)
    assert store_user_file(RATINGS, display_name="ratings.csv").path == old_app
    old_app.rename(old_cli)
    again = store_user_file(RATINGS, display_name="ratings_utf8.csv")
    assert again.path == old_cli and not again.created
    # A copy whose hash prefix matches but whose content differs is not taken for this file.
    old_cli.write_bytes(RATINGS + b"1,2,3,4,x\n")
    assert store_user_file(RATINGS, display_name="ratings.csv").created
    # A run record pointing at an old copy (no display name) reads it as before.
    old_app.write_bytes(RATINGS)
    record = {"kind": "file", "name": "ratings_utf8", "path": str(old_app), "options": {"user_col": "userId", "item_col": "movieId"}}
    data = DataSource.from_json(record).load()
    assert len(data) > 0 and data.name == "ratings_utf8"


def test_a_link_under_a_stored_name_is_never_taken_for_the_copy(tmp_path):
    """uploads/ is untrusted: a link under the final or an older name, even to the same bytes, is not the copy."""
    digest = hashlib.sha256(RATINGS).hexdigest()
    outside = tmp_path / "outside.csv"
    outside.write_bytes(RATINGS)
    folder = uploads_dir()
    final, old_app = folder / f"{digest[:32]}.csv", folder / f"{digest[:16]}-ratings_utf8.csv"
    final.symlink_to(outside)
    old_app.symlink_to(outside)
    stored = store_user_file(RATINGS, display_name="ratings.csv")
    assert stored.created and stored.path == final
    assert not final.is_symlink() and final.read_bytes() == RATINGS  # the link itself was replaced by the copy
    assert outside.read_bytes() == RATINGS


# -- display names --------------------------------------------------------------------------------------------
def test_readers_name_the_file_as_the_person_knows_it():
    stored = store_user_file(b"user,item,rating\n1,2,4\n2,3,x\n", display_name="my ratings.csv")
    options = UserFileOptions("user", "item", rating_col="stars")
    with pytest.raises(DataError) as error:
        read_user_file(stored.path, options, display_name="my ratings.csv")
    assert "'stars' is not in my ratings.csv" in error.value.message
    assert stored.path.name not in error.value.message and str(uploads_dir()) not in error.value.message
    with pytest.raises(DataError) as error:
        read_user_file(stored.path, UserFileOptions("user", "item", rating_col="rating"), display_name="my ratings.csv")
    assert "row 3 of my ratings.csv" in error.value.message and stored.path.name not in error.value.message


def test_an_upload_with_a_bad_column_names_the_uploaded_file():
    from webapp import data_ui

    upload, _ = data_ui.accept_upload((FILES / "bad_rating.csv").read_bytes(), "Bad Ratings 2024.csv")
    options = data_ui.options_from_form({"user": "user", "item": "item", "rating": "score"})
    with pytest.raises(DataError) as error:
        data_ui.use_upload(upload.path, options, "bad", label="Bad Ratings 2024.csv")
    message = error.value.message
    assert "Bad Ratings 2024.csv" in message and Path(upload.path).name not in message and upload.sha256[:16] not in message
    # The source records the name, so a later read (statistics, evaluating a run) says it too.
    options = data_ui.options_from_form({"user": "user", "item": "item", "rating": "rating"})
    with pytest.raises(DataError, match=r"row 3 of Bad Ratings 2024\.csv"):
        DataSource.file(upload.path, options, name="bad", display_name="Bad Ratings 2024.csv").load()
    # Refused at upload (nothing readable): the message names the upload, and nothing is kept.
    with pytest.raises(DataError) as error:
        data_ui.accept_upload(bytes(range(256)) * 8, "export.csv")
    assert error.value.message.startswith("export.csv ") and not _entries()[1:]


def test_a_drugs_upload_is_named_as_uploaded():
    import pandas as pd

    frame = pd.read_csv(REPO / "tests" / "fixtures" / "drugscom-raw" / "drugsComTrain_raw.tsv", sep="\t", dtype=str, keep_default_na=False)
    frame.loc[2, "usefulCount"] = "many"  # the third review's votes are not a number
    broken = frame.to_csv(sep="\t", index=False)
    stored = store_user_file(broken.encode(), display_name="reviews from the clinic.tsv")
    with pytest.raises(DataError) as error:
        DataSource.drugscom_file(stored.path, name="clinic", display_name="reviews from the clinic.tsv").load()
    assert "reviews from the clinic.tsv: usefulCount 'many' in row 3" in error.value.message, error.value.message
    assert stored.path.name not in error.value.message


def test_the_app_never_rewrites_library_messages():
    for path in [*sorted((REPO / "webapp").glob("*.py")), *sorted((REPO / "app_pages").glob("*.py")), REPO / "app.py"]:
        text = path.read_text()
        assert not re.search(r"\.message\.replace\(", text), f"{path.name} rewrites an error message"
        assert "uploaded.name}: {error.message" not in text, f"{path.name} prefixes an error message with the file name"
