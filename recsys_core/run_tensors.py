"""A run's tensors: the model (model.safetensors + model.json) and the seen items (seen.safetensors).

Written with safetensors and JSON, never pickle, and read back as untrusted input: the safetensors
header is parsed and checked first (a pickle renamed to model.safetensors or a truncated file is
refused before any tensor is read), the model name must be known and its config within the
documented bounds, and every tensor's name, dtype and shape is compared with a freshly built model
of that config; sparse index tensors must lie inside the model's users and items. Where these files
lie in a run's folder and how the folder is written: :mod:`recsys_core.run_store`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import scipy.sparse as sp

from . import limits
from .errors import ModelError, RunFileError
from .models import model_class
from .models.base import Recommender
from .run_store import MODEL_FILE, SEEN_FILE, inside_home, json_default, read_json
from .safe_files import open_regular_file, parse_json


def save_model(model: Recommender, folder: Path) -> None:
    """Write a fitted model's tensors and metadata into ``folder`` (which must exist)."""
    from safetensors.torch import save_file

    save_file(model.state_tensors(), str(folder / MODEL_FILE))
    (folder / "model.json").write_text(json.dumps(model.metadata(), indent=2, default=json_default))


def save_seen(seen: sp.csr_matrix, folder: Path) -> None:
    """The seen-items matrix as two CSR arrays (indptr, indices) in safetensors."""
    import torch
    from safetensors.torch import save_file

    seen = sp.csr_matrix(seen)
    seen.sum_duplicates()
    seen.sort_indices()
    save_file(
        {"seen.indptr": torch.as_tensor(seen.indptr.astype(np.int64)), "seen.indices": torch.as_tensor(seen.indices.astype(np.int64))},
        str(folder / SEEN_FILE),
    )


def load_seen(folder: Path, n_users: int, n_items: int) -> sp.csr_matrix | None:
    """The run's seen-items matrix, checked like the model's sparse tensors; None for runs saved before it existed."""
    path = folder / SEEN_FILE
    if not os.path.lexists(path):
        return None
    label = f"{SEEN_FILE} of run {folder.name}"
    path = inside_home(path, label, root=folder)

    def check_header(header: dict) -> None:
        declared = header.get("seen.indptr", {}).get("shape")
        if declared != [n_users + 1]:  # before any array is allocated
            raise RunFileError(
                f"{label}: the sparse index declares shape {declared}, the model has {n_users} users", "Delete the run and train it again."
            )

    tensors = _load_checked_safetensors(path, label, limits.MAX_SEEN_BYTES, check_header)
    indptr, indices = tensors.get("seen.indptr"), tensors.get("seen.indices")
    if indptr is None or indices is None or indptr.dtype != indices.dtype or str(indptr.dtype) != "torch.int64":
        raise RunFileError(f"{label} lacks the int64 tensors seen.indptr and seen.indices", "Delete the run and train it again.")
    indptr, indices = indptr.numpy(), indices.numpy()
    if indptr.ndim != 1 or len(indptr) != n_users + 1 or indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != len(indices):
        raise RunFileError(f"{label}: the sparse index is inconsistent with the model's {n_users} users")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_items):
        raise RunFileError(f"{label} refers to items outside the model's {n_items}")
    return sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(n_users, n_items))


MAX_SIZE = 100_000_000  # users or items a saved model may claim
_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


def _load_checked_safetensors(path: Path, label: str, max_bytes: int, check_header: Callable[[dict], None]) -> dict:
    """The tensors of ``path`` once its header has passed :func:`_safetensors_header` and ``check_header``.

    The file is opened once (a regular file within ``max_bytes``) and safetensors loads that open file,
    through ``/proc/self/fd`` where there is one: a file swapped in at ``path`` after the checks is not
    the one loaded. Loading from bytes read here would do the same but hold the file twice in memory
    (a 14 GB EASE model would need 28 GB), so the descriptor is handed over instead."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        handle = open_regular_file(path, label, max_bytes, root=path.parent)
    except OSError as exc:
        raise RunFileError(f"{label} is not a readable safetensors file: {exc}", "Delete the run and train it again.") from None
    with handle:
        check_header(_safetensors_header(handle, label))
        opened = f"/proc/self/fd/{handle.fileno()}"
        try:
            return load_file(opened if os.path.exists(opened) else str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise RunFileError(f"{label} cannot be read: {exc}", "Delete the run and train it again.") from None


def _safetensors_header(handle: BinaryIO, label: str) -> dict:
    """Parse and check the safetensors header of an open file (at its start): an 8-byte length at most
    ``MAX_SAFETENSORS_HEADER_BYTES``, JSON nested at most ``MAX_JSON_DEPTH`` deep, known dtypes, offsets inside the file."""
    try:
        size = os.fstat(handle.fileno()).st_size
        prefix = handle.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if length < 2 or length > min(limits.MAX_SAFETENSORS_HEADER_BYTES, size - 8):
            raise RunFileError(f"{label} is not a safetensors file (a pickle or a truncated file?)", "Delete the run and train it again.")
        header = parse_json(handle.read(length), f"the safetensors header of {label}")
    except OSError as exc:
        raise RunFileError(f"{label} is not a readable safetensors file: {exc}", "Delete the run and train it again.") from None
    if not isinstance(header, dict):
        raise RunFileError(f"{label} has a damaged header")
    body = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPES or not isinstance(entry.get("shape"), list):
            raise RunFileError(f"{label}: the tensor {name!r} has an unknown dtype or shape")
        offsets = entry.get("data_offsets")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= body
        ):
            raise RunFileError(
                f"{label} is truncated or damaged: the tensor {name!r} lies outside the file", "Delete the run and train it again."
            )
    return header


def _check_declared_shapes(cls: type[Recommender], skeleton: Recommender, header: dict, label: str) -> None:
    """Every tensor a model of this config has, against the safetensors header: dtype and shape, before loading.

    ``skeleton`` lives on the meta device (shapes without memory); a dimension it leaves at 0 depends on
    the data (sparse entries, sequences) and is checked after loading."""
    expected = dict(skeleton._state())
    expected["known.indptr"] = (skeleton.n_users + 1,)
    for name, reference in expected.items():
        entry = header.get(name)
        if entry is None:
            raise RunFileError(
                f"{label} lacks the tensor {name!r} that a {cls.name} model of this config has", "Delete the run and train it again."
            )
        shape = tuple(reference) if isinstance(reference, tuple) else tuple(reference.shape)
        declared = entry["shape"]
        if len(declared) != len(shape) or any(r != 0 and d != r for d, r in zip(declared, shape)):
            raise RunFileError(f"{label}: the tensor {name!r} has shape {tuple(declared)}; this model's config needs {shape}")


def _check_tensors(cls: type[Recommender], model: Recommender, tensors: dict, label: str) -> None:
    """Names, dtypes and shapes against a freshly built model of the same config and sizes."""
    import torch

    expected = {k: v for k, v in model._state().items()}
    expected["known.indptr"] = torch.zeros(model.n_users + 1, dtype=torch.int64)
    expected["known.indices"] = torch.zeros(0, dtype=torch.int64)
    for name, reference in expected.items():
        if name not in tensors:
            raise RunFileError(
                f"{label} lacks the tensor {name!r} that a {cls.name} model of this config has", "Delete the run and train it again."
            )
        tensor = tensors[name]
        if tensor.dtype != reference.dtype or tensor.dim() != reference.dim():
            raise RunFileError(
                f"{label}: the tensor {name!r} is {tensor.dtype} with {tensor.dim()} dimensions; a {cls.name} model needs {reference.dtype} with {reference.dim()}"
            )
        # Dimensions of size 0 in the fresh model depend on the data (sparse entries, sequences); the rest is fixed by the config.
        if any(r != 0 and t != r for t, r in zip(tensor.shape, reference.shape)):
            raise RunFileError(
                f"{label}: the tensor {name!r} has shape {tuple(tensor.shape)}; this model's config needs {tuple(reference.shape)}"
            )
    for name, tensor in tensors.items():
        if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
            raise RunFileError(f"{label}: the tensor {name!r} holds non-finite values")
        if name.endswith(".indptr"):
            values = tensor.numpy()
            prefix = name[: -len("indptr")]
            partner = tensors.get(prefix + "indices", tensors.get(prefix + "items"))  # CSR indices, or SVAE's item sequences
            if (
                values.ndim != 1
                or len(values) == 0
                or values[0] != 0
                or (np.diff(values) < 0).any()
                or partner is None
                or values[-1] != len(partner)
            ):
                raise RunFileError(f"{label}: the sparse index {name!r} is inconsistent")
        if name.endswith((".indices", ".items")) and tensor.numel():
            values = tensor.numpy()
            if values.min() < 0 or values.max() >= model.n_items:
                raise RunFileError(f"{label}: {name!r} refers to items outside the model's {model.n_items}")
    if len(tensors["known.indptr"]) != model.n_users + 1:
        raise RunFileError(f"{label}: the known interactions cover {len(tensors['known.indptr']) - 1} users, the model {model.n_users}")


def load_model(folder: Path, device: str = "cpu") -> Recommender:
    """Rebuild a model from ``folder`` (safetensors + JSON, never a pickle), checking everything first."""
    import torch

    from .limits import check_memory

    label = f"the model of run {folder.name}"
    metadata = read_json(folder, "model.json")
    try:
        cls = model_class(metadata.get("model"))
        n_users, n_items = metadata.get("n_users"), metadata.get("n_items")
        if not all(isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_SIZE for n in (n_users, n_items)):
            raise RunFileError(f"{label} claims {n_users!r} users and {n_items!r} items, which is not a valid size")
        config = cls.Config.from_json(metadata.get("config", {}))
        meta = metadata.get("meta", {})
        if not isinstance(meta, dict):
            raise RunFileError(f"{label} has damaged metadata")
        check_memory(cls.name, n_users, n_items, 0, config, str(device))
        skeleton = cls(config)
        skeleton.n_users, skeleton.n_items, skeleton.meta = n_users, n_items, dict(meta)
        # On torch's meta device the skeleton has every tensor's shape and dtype and allocates none of them:
        # sizes declared in model.json are compared with the file's header before any memory is spent on them.
        skeleton.device = torch.device("meta")
        with torch.device("meta"):
            skeleton._build()
    except ModelError as error:  # unknown model name, settings out of bounds
        raise RunFileError(f"{label}: {error.message}", error.hint) from None
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise RunFileError(f"{label} has damaged metadata: {exc}", "Delete the run and train it again.") from None
    if not os.path.lexists(folder / MODEL_FILE):
        raise RunFileError(f"run {folder.name} has no {MODEL_FILE}", "The run is incomplete: delete it and train it again.")
    path = inside_home(folder / MODEL_FILE, f"{MODEL_FILE} of run {folder.name}", root=folder)
    tensors = _load_checked_safetensors(
        path, label, limits.MAX_MODEL_BYTES, lambda header: _check_declared_shapes(cls, skeleton, header, label)
    )
    _check_tensors(cls, skeleton, tensors, label)
    try:
        return cls.from_state({**metadata, "n_users": n_users, "n_items": n_items, "meta": meta}, tensors, device=device)
    except (RuntimeError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise RunFileError(f"{label} does not fit its config: {exc}", "Delete the run and train it again.") from None
