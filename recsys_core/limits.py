"""Documented limits: what a file, a model setting and a training may ask of the machine.

Everything a user controls (an uploaded file, ``--set key=value``, a form in the app, a shared
``run.json``) is checked against the numbers below before any work starts, and a refusal is a
:class:`~recsys_core.errors.LimitError` (or a DataError / ModelError) that names the limit and the
way out. The numbers live here, in one place, so the README, the app's widgets and the tests quote
the same values.

Files (read at call time, so a test can lower them with ``monkeypatch.setattr``):

* ``MAX_UPLOAD_MB``           an upload in the app (Streamlit's ``server.maxUploadSize``)
* ``MAX_FILE_BYTES``          any file the reader opens (``train --csv``, a stored upload)
* ``MAX_DECOMPRESSED_BYTES``  what a .gz or .zip may expand to (streamed, never unpacked whole)
* ``MAX_COMPRESSION_RATIO``   past 16 MB of output, more than this many bytes out per byte in is a bomb
* ``MAX_ZIP_MEMBERS``         entries a zip may list (the reader reads exactly one table from it)
* ``MAX_ROWS`` / ``MAX_COLUMNS`` / ``MAX_CELL_CHARS``  the table itself
* ``TIMESTAMP_RANGE``         unix seconds from 1900-01-01 to 2200-01-01; anything else is refused
  rather than wrapped around in int64

Files of a saved run and the tuning store (the data home is untrusted: anyone with write access to it,
or who shares a run folder, controls them). Each is opened only when it is a regular file (no link,
named pipe or device) and no bigger than its cap, checked before a byte is read
(:mod:`recsys_core.safe_files`); tables, arrays and models are also refused when what they declare
(rows, decoded sizes, shapes) would need more memory than their cap, before it is allocated:

* ``MAX_RUN_JSON_BYTES``          run.json and model.json
* ``MAX_VOCAB_JSON_BYTES``        vocab.json (the raw ids of every user and item)
* ``MAX_EVALUATION_JSON_BYTES``   each evaluation-*.json (per-user values)
* ``MAX_MODEL_BYTES`` / ``MAX_SEEN_BYTES``  model.safetensors / seen.safetensors
* ``MAX_SAFETENSORS_HEADER_BYTES``, ``MAX_JSON_DEPTH``  a safetensors header (as safetensors' own
  loader caps it) and the nesting of any JSON read from a run
* ``MAX_RECORD_STRING_CHARS``     the longest string run.json or model.json may hold
* ``MAX_TABLE_BYTES`` / ``MAX_TABLE_DECODED_BYTES``  items.parquet / users.parquet on disk, and decoded
* ``MAX_MAP_BYTES``               a cached embedding map (map-*.npz), decoded
* ``MAX_STUDY_STORE_BYTES``       the tuning store (studies.db)
* ``MAX_UNPACKED_BYTES``          everything ``fetch --source`` unpacks from a zip, nested zips included

Model settings: each config field declares its inclusive range (``bounded``, often one of the shared
``*_RANGE`` below) and :func:`setting_bounds` reads it; :func:`check_config` checks types (from the
dataclass annotations) and bounds for every model config, whoever built it
(``ModelConfig.__post_init__`` calls it).

Memory: :func:`estimate_memory` gives the peak bytes of fitting and evaluating a model on data of a
given shape: the data and score blocks here, the model's own part (dense item-item matrices,
autoencoder input rows, parameters with Adam's state) from its class (``Recommender.model_memory``,
on the shared parts written here once); :func:`check_memory` compares it with ``MemAvailable`` from ``/proc/meminfo`` (or the free
CUDA memory) and refuses with the estimate and the way out.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .errors import LimitError, ModelError

# -- files --------------------------------------------------------------------------------------------------
MAX_UPLOAD_MB = 200
MAX_FILE_BYTES = 1_000_000_000
MAX_DECOMPRESSED_BYTES = 1_000_000_000
MAX_COMPRESSION_RATIO = 100  # real tables compress 5-20 fold; a bomb compresses ~1000 fold
MAX_ZIP_MEMBERS = 64
MAX_ROWS = 30_000_000  # MovieLens 25M fits
MAX_COLUMNS = 256
MAX_CELL_CHARS = 100_000  # a long Drugs.com review is ~10,000 characters
MAX_ID = 2**53  # ids beyond this lose precision as floats
MAX_ABS_VALUE = 1e12  # ratings and weights
TIMESTAMP_RANGE = (-2_208_988_800, 7_258_118_400)  # 1900-01-01 .. 2200-01-01 in unix seconds

# -- files of a saved run and the tuning store ---------------------------------------------------------------
MAX_RUN_JSON_BYTES = 16 << 20  # a run.json with 1,000 epochs of history and a study is ~1 MB
MAX_VOCAB_JSON_BYTES = 512 << 20
MAX_EVALUATION_JSON_BYTES = 512 << 20  # per-user values of a 20M-rating run stay well below this
MAX_MODEL_BYTES = 32 << 30  # EASE on 60,000 items is 14 GB of float32
MAX_SEEN_BYTES = 4 << 30  # two int64 arrays: 8 bytes per interaction of MAX_ROWS, and the index
MAX_SAFETENSORS_HEADER_BYTES = 100 << 20  # safetensors' own loader refuses longer headers
MAX_JSON_DEPTH = 64  # run files nest 5 deep; deeper only to exhaust the parser's recursion
MAX_RECORD_STRING_CHARS = 100_000
MAX_TABLE_BYTES = 1 << 30
MAX_TABLE_DECODED_BYTES = 2 << 30  # ML-25M's 62,000 titles and genres decode to ~10 MB
MAX_MAP_BYTES = 1 << 30  # two float32 coordinates per point: 134M points
MAX_STUDY_STORE_BYTES = 4 << 30
MAX_UNPACKED_BYTES = 4 << 30  # the largest data set fetched (ML-25M) unpacks to 1.2 GB

# -- app controls -------------------------------------------------------------------------------------------
MAX_K = 1000
#: Trainings that may run at once in one app server; more wait in a queue (see recsys_core.jobs).
MAX_CONCURRENT_TRAININGS = 2

# -- model settings -----------------------------------------------------------------------------------------
#: Ranges (inclusive) that fields of several model configs share; each config field declares its own range
#: with :func:`recsys_core.models.base.bounded`, naming one of these or writing its own.
EPOCHS_RANGE = (1, 1000)
LEARNING_RATE_RANGE = (1e-7, 1.0)
BATCH_SIZE_RANGE = (1, 65_536)
WEIGHT_DECAY_RANGE = (0.0, 1e6)
PATIENCE_RANGE = (0, 1000)
EMBEDDING_SIZE_RANGE = (1, 4096)
LAYER_WIDTH_RANGE = (1, 8192)
N_NEGATIVES_RANGE = (0, 100)
DROPOUT_RANGE = (0.0, 0.99)  # dropout and corruption: a share of the input dropped
BETA_CAP_RANGE = (0.0, 10.0)
ANNEAL_STEPS_RANGE = (1, 1e9)
MAX_TUPLE_LENGTH = 50  # layers, l2_grid


def setting_bounds(name: str, config_type: type | None = None) -> tuple[float, float] | None:
    """The documented range of setting ``name`` of ``config_type``: the ``bounds`` its field declares
    (:func:`recsys_core.models.base.bounded`), by the nearest class of the config that declares them, so
    a subclass that only changes a default keeps its base's range; None when it declares none."""
    for klass in getattr(config_type, "__mro__", ()):
        field = getattr(klass, "__dataclass_fields__", {}).get(name)
        if field is not None and "bounds" in field.metadata:
            return field.metadata["bounds"]
    return None


def check_setting(name: str, value: Any, config_type: type | None = None) -> None:
    """A number against its documented bounds (:func:`setting_bounds`; no-op for names without bounds)."""
    bounds = setting_bounds(name, config_type)
    if bounds is None or value is None:
        return
    low, high = bounds
    if not (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)):
        raise ModelError(f"setting {name} must be a number, not {value!r}")
    if not math.isfinite(float(value)) or not low <= value <= high:
        raise ModelError(f"setting {name}={value!r} is outside its range {low:g} to {high:g}", "Choose a value inside the range.")


def _accepts(kind: Any, value: Any) -> bool:
    """Whether ``value`` fits the annotation ``kind`` (int, float, bool, str, Literal, tuple[...], unions)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(k, value) for k in typing.get_args(kind))
    if origin is Literal:
        return value in typing.get_args(kind)
    if kind is type(None):
        return value is None
    if origin is tuple:
        args = [a for a in typing.get_args(kind) if a is not Ellipsis]
        return isinstance(value, tuple) and all(_accepts(args[0] if args else Any, v) for v in value)
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str) and len(value) <= 200
    return True  # Any or a type this check does not know: the model validates it


def check_config(config: Any) -> None:
    """Types and documented bounds of every field of a model config; a ModelError names the first bad one."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        kind = hints.get(field.name, Any)
        if not _accepts(kind, value):
            raise ModelError(
                f"setting {field.name}={value!r} of {type(config).__name__} is not a valid {getattr(kind, '__name__', None) or kind}",
                "Check the value's type (a whole number, a decimal number, true/false or a list).",
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ModelError(f"setting {field.name}={value!r} is not a finite number")
        if isinstance(value, tuple):
            if len(value) > MAX_TUPLE_LENGTH:
                raise ModelError(f"setting {field.name} has {len(value)} entries; at most {MAX_TUPLE_LENGTH} are allowed")
            for entry in value:
                check_setting(field.name, entry, type(config))
        else:
            check_setting(field.name, value, type(config))


# -- memory -------------------------------------------------------------------------------------------------
GIB = 1 << 30
SCORE_BLOCK_FLOATS = 1 << 24  # users × items scores are computed in blocks of this many floats


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes of one training + evaluation, and what dominates it (for the message)."""

    total: int
    dominant: str
    way_out: str


@dataclass(frozen=True)
class ModelMemory:
    """The model's own part of that peak (its parameters, optimiser state and work arrays), as its class
    estimates it (``Recommender.model_memory``), with what dominates and the way out when it does."""

    bytes: int
    dominant: str = "the data and score blocks"
    way_out: str = "use a smaller data set or a k-core filter"


def config_width(config: Any) -> int:
    """The widest hidden layer or embedding of a config (the size parameters scale with); 256 without a config."""
    if config is None:
        return 256
    sizes = [1]
    for name in ("embedding_size", "factors", "hidden", "hidden_size", "rnn_size", "latent_size"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            sizes.append(value)
    sizes.extend(getattr(config, "layers", ()) or ())
    return max(sizes)


def config_batch(config: Any) -> int:
    """A config's training batch size (256 without one)."""
    return int(getattr(config, "batch_size", 256) or 256)


def autoencoder_memory(n_users: int, n_items: int, config: Any, rows_over_users: bool = False) -> ModelMemory:
    """An autoencoder's part: parameters row × width with gradients and Adam's two moments (× 4), plus a
    batch of dense rows with activations and gradients (× 6), a row being n_items wide (n_users for a
    model that encodes items as rows over the users, ``rows_over_users``)."""
    row, rows_of = (n_users, "users") if rows_over_users else (n_items, "items")
    batch, width = config_batch(config), config_width(config)
    return ModelMemory(
        4 * 4 * 2 * row * width + 6 * 4 * min(batch, max(n_users, n_items)) * row,
        f"autoencoder rows of {row:,} {rows_of} (batch {batch}, width {width})",
        "lower batch_size or the layer sizes, or keep fewer users and items (k-core)",
    )


def embedding_memory(n_users: int, n_items: int, config: Any) -> ModelMemory:
    """An embedding model's part: (n_users + n_items) × width parameters × 4 (gradients, Adam's moments)
    and a batch's activations; the model adds its epoch's training arrays."""
    batch, width = config_batch(config), config_width(config)
    return ModelMemory(
        4 * 4 * (n_users + n_items) * width + 4 * 8 * batch * width * 8,
        f"embeddings of {n_users:,} users and {n_items:,} items (width {width})",
        "lower embedding_size or batch_size, or keep fewer users and items (k-core)",
    )


def estimate_memory(model_name: str, n_users: int, n_items: int, n_interactions: int, config: Any = None) -> MemoryEstimate:
    """Peak bytes to fit and evaluate ``model_name`` on data of this shape (an upper estimate).

    * data: the interactions and their copies in the split, CSR matrices and sampled candidates
      (~160 bytes per interaction: 2.9 GiB read and split at synthetic ML-20M shape);
    * scoring: blocks of ``SCORE_BLOCK_FLOATS`` float32 scores plus the masks and ranks made from them;
    * the model itself: its class's ``model_memory`` (EASE's n × n matrices, item-kNN's similarity
      blocks, :func:`autoencoder_memory`, :func:`embedding_memory` with the epoch's training arrays,
      iALS's factors and confidence matrix; a model without its own estimate, popularity, keeps a count
      per item). ``config`` None: the estimate for a width and batch of 256.
    """
    from .models import model_class

    n_users, n_items, n_interactions = int(n_users), int(n_items), int(n_interactions)
    data = 160 * n_interactions + 16 * (n_users + n_items)
    block = min(SCORE_BLOCK_FLOATS, max(1, n_users) * max(1, n_items))  # a block never exceeds users × items
    scoring = 4 * 4 * block
    model = model_class(model_name).model_memory(n_users, n_items, n_interactions, config)
    return MemoryEstimate(total=data + scoring + model.bytes, dominant=model.dominant, way_out=model.way_out)


# EASE beyond its n × n matrices: the Gram matrix's sparse column blocks and small arrays; while λ is
# chosen, also the validation evaluator's score blocks (about 2e7 float32 cells, held about three times:
# scores, their private copy, comparisons). Checked against the measured peak in tests/test_models_baselines.py.
_EASE_OVERHEAD_BYTES = 64 * 2**20
_EASE_EVALUATION_BYTES = 3 * 4 * 20_000_000


def ease_memory_bytes(n_items: int, tuning: bool) -> int:
    """Peak bytes an EASE fit adds to the process: n × n float32 matrices (two while λ is chosen) and overheads."""
    matrices = (2 if tuning else 1) * 4 * n_items * n_items
    return matrices + _EASE_OVERHEAD_BYTES + (_EASE_EVALUATION_BYTES if tuning else 0)


def available_memory(device: str = "cpu") -> int:
    """Bytes free for new work: ``RECSYS_MEMORY_LIMIT_GB`` when set, free CUDA memory on a GPU,
    ``MemAvailable`` on the CPU, else the machine's total memory."""
    limit = os.environ.get("RECSYS_MEMORY_LIMIT_GB")
    if limit:
        return int(float(limit) * 2**30)
    if str(device).startswith("cuda"):
        try:
            import torch

            return int(torch.cuda.mem_get_info()[0])
        except Exception:  # no CUDA runtime: fall back to host memory
            pass
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(model_name: str, n_users: int, n_items: int, n_interactions: int, config: Any = None, device: str = "cpu") -> MemoryEstimate:
    """Refuse (LimitError) when the estimate exceeds the memory available now; else return the estimate."""
    estimate = estimate_memory(model_name, n_users, n_items, n_interactions, config)
    free = available_memory(device)
    if free is not None and estimate.total > free:
        raise LimitError(
            f"{model_name} on {n_users:,} users × {n_items:,} items needs about {estimate.total / GIB:,.1f} GiB "
            f"({estimate.dominant}), but only {free / GIB:,.1f} GiB of memory is available",
            f"To fit it, {estimate.way_out}.",
        )
    return estimate


# -- data against the protocol -------------------------------------------------------------------------------
LEAVE_ONE_OUT_MIN = 3  # test + validation + at least one item to train on (splits.leave_one_out's minimum)


def check_protocol_data(data: Any, protocol: str, n_negatives: int = 99) -> None:
    """Refuse, before any training, data on which ``protocol`` cannot produce a single finite metric.

    Leave-one-out needs a user with 3 different items; the sampled protocol needs, for every test
    user, ``n_negatives`` items that user has not seen; held-out users need enough users with 5 items
    (checked by the split itself, before training); the ratings protocol needs enough ratings for a
    non-empty validation and test part. Ratings and weights must be finite.
    """
    from .errors import DataError

    for column in ("rating", "weight"):
        values = getattr(data, column, None)
        if values is not None and len(values) and not np.isfinite(values).all():
            raise DataError(f"the {column}s of {data.name} include infinite or missing values", f"Fix or remove those rows; {column}s must be finite.")
    if data.n_users < 2 or data.n_items < 2 or len(data) < 3:
        raise DataError(
            f"{data.name} has {data.n_users:,} user(s), {data.n_items:,} item(s) and {len(data):,} interaction(s): too few to train and test a recommender",
            "Check the user and item columns, the rating threshold and the k-core filter.",
        )
    from .protocols import get_protocol

    spec = get_protocol(protocol)
    if spec.leave_one_out:
        # Distinct (user, item) pairs by one value sort: np.unique's hash path (numpy >= 2.3) took 79 s
        # on ML-20M's 20M keys, the sort 0.6 s.
        keys = np.sort(data.user.astype(np.int64) * data.n_items + data.item.astype(np.int64))
        first = np.ones(len(keys), dtype=bool)
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        distinct = np.bincount(keys[first] // data.n_items, minlength=data.n_users)
        eligible = distinct >= LEAVE_ONE_OUT_MIN
        if not eligible.any():
            what = "every user has a single interaction, so there is nothing to split" if distinct.max() <= 1 else (
                f"no user has {LEAVE_ONE_OUT_MIN} different items (the most any user has is {int(distinct.max())})"
            )
            raise DataError(
                f"{data.name} cannot be evaluated with {protocol}: {what}",
                "Leave-one-out holds out each user's latest item for test and the one before for validation and trains on the rest: "
                "choose other user/item columns, lower the threshold, or use data with longer histories.",
            )
        if spec.sampled_negatives is not None:
            if data.n_items < n_negatives + 1:
                raise DataError(
                    f"{data.name} has {data.n_items} items, fewer than the {n_negatives} sampled negatives + 1 test item that {protocol} ranks",
                    "Use the loo-full protocol (ranks among every unseen item) or data with more items.",
                )
            unseen = data.n_items - distinct[eligible]
            if unseen.min() < n_negatives:
                raise DataError(
                    f"in {data.name} a user has seen all but {int(unseen.min())} of the {data.n_items} items, fewer than the {n_negatives} negatives {protocol} samples",
                    "Use the loo-full protocol, or data with more items.",
                )
    if spec.needs_ratings:
        if getattr(data, "rating", None) is None:
            raise DataError("the ratings protocol needs a rating column", "Choose a rating column or a ranking protocol.")
        n = len(data)
        if int(round(0.1 * n)) < 1 or int(round(0.05 * n)) < 1:
            raise DataError(f"{data.name} has {n} ratings, too few for a validation and a test part", "Use at least 30 ratings.")
