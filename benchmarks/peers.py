"""Ours against the field's own libraries, epoch for epoch, on MovieLens 100K.

Per model, seconds per training epoch of ours and of each peer at the same settings, on the same
training interactions (ml-100k, leave-one-out by time, ``split.train``):

============  ==========================================  ==============================================
model         ours                                        peers
============  ==========================================  ==============================================
BPR           ``bpr``, 64 factors                         implicit's BayesianPersonalizedRanking, cornac's BPR
GMF           ``gmf``, 32 factors, 4 negatives            RecBole's NeuMF with only its MF part trained
MLP           ``mlp``, tower 64-32-16-8, 4 negatives      RecBole's NeuMF with only its MLP part trained
NeuMF         ``neumf`` without pretraining               RecBole's NeuMF (no pretraining)
Mult-VAE      ``multvae``                                 RecBole's MultiVAE, cornac's VAECF
EASE          ``ease``, λ = 500 (closed form: the fit)    cornac's EASE (the fit)
iALS          ``ials`` (implicit underneath)             implicit's AlternatingLeastSquares
============  ==========================================  ==============================================

Ours is timed at its default config and, where that differs, at the peer's settings (both rows are
printed, labelled). Every measurement is its own process (imports, thread pools and allocators do not
carry over), with one thread: OMP/MKL/OpenBLAS variables set to 1 before anything is imported,
``torch.set_num_threads(1)``, threadpoolctl's limit and implicit's ``num_threads=1``. Runs are
interleaved (ours, peer, ours, peer, ..., the order reversed on every other repeat) so that drift in
the machine's load falls on both, and the 1-minute load average is recorded beside every measurement.
The first ``--warmup`` epochs of each process are dropped; the figure is the median of the rest over
all repeats.

How each library's epoch is read: ours from the trainer's history (``Trainer(device="cpu",
epochs=N, patience=0)`` on ``validation=None``); implicit from its per-iteration callback; RecBole by
timing its trainer's ``_train_epoch`` (the epoch without evaluation); cornac exposes no per-epoch hook,
so each of its epochs is a fresh model fitted for one iteration (its set-up is a random
initialisation, small beside an epoch). A closed-form model (EASE) is timed as its whole fit.

RecBole pins an older numpy than ours: it runs with another interpreter (``--recbole-python``, by
default ``/work/venv-recbole/bin/python`` when it exists; see requirements-recbole.txt). Its process
imports only RecBole, torch and numpy, and reads the same training rows from atomic files written here.

Writes benchmarks/results/peers.{json,md}.

    pip install -r requirements-peers.txt
    python -m venv /work/venv-recbole && /work/venv-recbole/bin/pip install -r requirements-recbole.txt
    python benchmarks/peers.py [--epochs 2] [--warmup 1] [--repeats 2] [--models bpr,ease] [--recbole-python PATH]
"""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
if __name__ == "__main__":  # before numpy, scipy or torch is imported; children get them through their environment too
    for _variable in THREAD_VARIABLES:
        os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _common  # noqa: E402
from benchmarks._common import markdown_table, write  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
RECBOLE_PYTHON = Path("/work/venv-recbole/bin/python")
SEED = 0

# ---------------------------------------------------------------------------- what is compared
# Ours at the peer's settings: each key is a tuple of alternative config field names (the first one the
# model's config has is set), so a model whose fields are named differently is still compared, and one
# that has none of them is reported as such rather than silently run at other settings.
COMPARISONS: dict[str, dict] = {
    "bpr": {
        "label": "BPR, 64 factors",
        "ours": "bpr",
        "ours_default": {},
        # implicit's and cornac's epoch is one SGD triple per training positive: one negative each.
        "ours_at_peer": {("embedding_size",): 64, ("n_negatives",): 1},
        "peer_settings": "64 factors (+ item bias), one sampled negative per positive, one pass over the positives",
        "peers": [
            {"library": "implicit", "kind": "implicit-bpr", "settings": {"factors": 64, "learning_rate": 0.01, "regularization": 0.01}},
            {"library": "cornac", "kind": "cornac-bpr", "settings": {"k": 64, "learning_rate": 0.01, "lambda_reg": 0.01}},
        ],
    },
    "gmf": {
        "label": "GMF, 32 factors, 4 negatives",
        "ours": "gmf",
        "ours_default": {},
        "ours_at_peer": {("embedding_size",): 32, ("n_negatives",): 4, ("batch_size",): 256, ("learning_rate",): 1e-3},
        "peer_settings": "32 factors, 4 negatives per positive, batch 256 rows (positives and negatives), Adam 1e-3",
        "peers": [
            {
                "library": "RecBole",
                "kind": "recbole",
                "note": "RecBole's NeuMF with only its MF part trained (its GMF; it still looks up the unused MLP embeddings, a negligible cost)",
                "settings": {
                    "model": "NeuMF",
                    "mf_train": True,
                    "mlp_train": False,
                    "mf_embedding_size": 32,
                    "mlp_embedding_size": 32,
                    "mlp_hidden_size": [32, 16, 8],
                    "dropout_prob": 0.0,
                    "negatives": 4,
                    "train_batch_size": 256,
                    "learning_rate": 1e-3,
                },
            },
        ],
    },
    "mlp": {
        "label": "MLP 64-32-16-8, 4 negatives",
        "ours": "mlp",
        "ours_default": {},
        "ours_at_peer": {("layers",): (64, 32, 16, 8), ("n_negatives",): 4, ("batch_size",): 512, ("learning_rate",): 2e-3},
        "peer_settings": "embeddings of 32 concatenated, tower 64-32-16-8 (ReLU), 4 negatives per positive, batch 512 rows, Adam 2e-3",
        "peers": [
            {
                "library": "RecBole",
                "kind": "recbole",
                "note": "RecBole's NeuMF with only its MLP part trained (it still looks up the unused MF embeddings, a negligible cost)",
                "settings": {
                    "model": "NeuMF",
                    "mf_train": False,
                    "mlp_train": True,
                    "mf_embedding_size": 32,
                    "mlp_embedding_size": 32,
                    "mlp_hidden_size": [32, 16, 8],
                    "dropout_prob": 0.0,
                    "negatives": 4,
                    "train_batch_size": 512,
                    "learning_rate": 2e-3,
                },
            },
        ],
    },
    "neumf": {
        "label": "NeuMF without pretraining",
        "ours": "neumf",
        "ours_default": {("pretrain",): False},
        "ours_at_peer": {
            ("pretrain",): False,
            ("embedding_size",): 32,
            ("layers",): (64, 32, 16, 8),
            ("n_negatives",): 4,
            ("batch_size",): 1024,
            ("learning_rate",): 3e-3,
        },
        "peer_settings": "GMF 32 + MLP 64-32-16-8 (32 per embedding), no dropout, 4 negatives, batch 1024 rows, Adam 3e-3",
        "peers": [
            {
                "library": "RecBole",
                "kind": "recbole",
                "settings": {
                    "model": "NeuMF",
                    "mf_train": True,
                    "mlp_train": True,
                    "use_pretrain": False,
                    "mf_embedding_size": 32,
                    "mlp_embedding_size": 32,
                    "mlp_hidden_size": [32, 16, 8],
                    "dropout_prob": 0.0,
                    "negatives": 4,
                    "train_batch_size": 1024,
                    "learning_rate": 3e-3,
                },
            },
        ],
    },
    "multvae": {
        "label": "Mult-VAE",
        "ours": "multvae",
        "ours_default": {},
        "ours_at_peer": {("layers",): (600, 200), ("dropout",): 0.5, ("batch_size",): 500, ("learning_rate",): 3e-3, ("beta_cap",): 0.2},
        "peer_settings": "items-600-200 (tanh), input dropout 0.5, batch 500 users, Adam 3e-3, KL weight ≤ 0.2",
        "peers": [
            {
                "library": "RecBole",
                "kind": "recbole",
                "settings": {
                    "model": "MultiVAE",
                    "mlp_hidden_size": [600],
                    "latent_dimension": 200,
                    "dropout_prob": 0.5,
                    "anneal_cap": 0.2,
                    "train_batch_size": 500,
                    "learning_rate": 3e-3,
                },
            },
            {
                "library": "cornac",
                "kind": "cornac-vaecf",
                "note": "cornac's VAECF has no input dropout and a fixed KL weight β = 0.2",
                "settings": {
                    "k": 200,
                    "autoencoder_structure": [600],
                    "act_fn": "tanh",
                    "likelihood": "mult",
                    "batch_size": 500,
                    "learning_rate": 3e-3,
                    "beta": 0.2,
                },
            },
        ],
    },
    "ease": {
        "label": "EASE λ=500",
        "ours": "ease",
        "ours_default": {("l2",): 500.0},
        "ours_at_peer": {("l2",): 500.0},
        "peer_settings": "λ = 500, negative weights kept (cornac posB=False); the whole closed-form fit",
        "peers": [{"library": "cornac", "kind": "cornac-ease", "settings": {"lamb": 500.0, "posB": False}}],
    },
    "ials": {
        "label": "iALS",
        "ours": "ials",
        "ours_default": {},
        "ours_at_peer": {
            ("factors", "embedding_size", "n_factors"): 32,
            ("regularization", "regularisation", "l2", "weight_decay"): 10.0,
            ("alpha",): 1.0,
        },
        "peer_settings": "32 factors, regularisation 10, α 1 (conjugate-gradient solver, implicit's default)",
        # cornac's WMF is not an analogue: it fits weighted MF by Adam on mini-batches (in TensorFlow), not by alternating least squares.
        "peers": [{"library": "implicit", "kind": "implicit-als", "settings": {"factors": 32, "regularization": 10.0, "alpha": 1.0}}],
    },
}


# ---------------------------------------------------------------------------- child: one measurement


def _limit_threads() -> dict:
    """One thread in every pool this process may use; returns what torch reports, as a check."""
    limits: dict = {}
    try:
        import threadpoolctl

        limits["_threadpool_limits"] = threadpoolctl.threadpool_limits(1)  # kept alive: the limit lasts while it does
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only settable before the first parallel work; a fresh process has done none
            pass
        limits["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return limits


def _train_csr(folder: Path):
    """The training interactions written by the parent, as a binary users × items CSR matrix."""
    import numpy as np
    import scipy.sparse as sp

    arrays = np.load(folder / "train.npz")
    shape = (int(arrays["n_users"]), int(arrays["n_items"]))
    matrix = sp.csr_matrix((np.ones(len(arrays["user"]), dtype=np.float32), (arrays["user"], arrays["item"])), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _cornac_train_set(folder: Path):
    import cornac
    import numpy as np

    matrix = _train_csr(folder).tocoo()
    n_users, n_items = matrix.shape
    triples = (matrix.row.astype(np.int64), matrix.col.astype(np.int64), matrix.data.astype(np.float64))
    return cornac.data.Dataset(
        n_users, n_items, dict(zip(range(n_users), range(n_users))), dict(zip(range(n_items), range(n_items))), triples, seed=SEED
    )


def _measure_ours(spec: dict) -> dict:
    import inspect

    import torch

    from recsys_core.datasets import read_ml100k
    from recsys_core.models import config_fields, create_model
    from recsys_core.splits import leave_one_out
    from recsys_core.trainer import Trainer

    split = leave_one_out(read_ml100k(spec["data"]))
    # A model that runs its own thread pool (a wrapped library) by a setting of its config gets one thread too.
    one_thread = {name: 1 for name in ("num_threads", "threads") if name in {f["name"] for f in config_fields(spec["model"])}}
    model = create_model(spec["model"], **spec["overrides"], **one_thread)
    # A trainer that chooses torch's threads itself is told one, where it takes the setting.
    trainer_threads = {name: 1 for name in ("threads", "num_threads") if name in inspect.signature(Trainer).parameters}
    _limit_threads()  # again after the imports, in case one of them set its own
    history = Trainer(device="cpu", seed=SEED, epochs=spec["epochs"], patience=0, **trainer_threads).fit(
        model, split.train, validation=None
    )
    if model.iterative:
        seconds, unit = [e["seconds"] for e in history.epochs if e.get("epoch")], "epoch"
    else:
        seconds, unit = [history.fit_seconds], "fit"
    # Read after the fit: what it trained with, whoever set it.
    return {"seconds": seconds, "unit": unit, "config": model.config.to_json(), "torch_threads": torch.get_num_threads()}


def _measure_implicit(spec: dict) -> dict:
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    threads = _limit_threads()
    matrix = _train_csr(Path(spec["folder"]))
    cls = BayesianPersonalizedRanking if spec["kind"] == "implicit-bpr" else AlternatingLeastSquares
    model = cls(**spec["settings"], iterations=spec["epochs"], num_threads=1, random_state=SEED)
    marks = [time.perf_counter()]
    model.fit(matrix, show_progress=False, callback=lambda *_: marks.append(time.perf_counter()))
    seconds = [b - a for a, b in zip(marks, marks[1:])]
    return {"seconds": seconds, "unit": "epoch", "torch_threads": threads.get("torch_threads")}


def _measure_cornac(spec: dict) -> dict:
    import cornac

    threads = _limit_threads()
    train_set = _cornac_train_set(Path(spec["folder"]))
    settings, seconds = dict(spec["settings"]), []
    if spec["kind"] == "cornac-ease":
        cls, runs, unit = cornac.models.EASE, 1, "fit"
    elif spec["kind"] == "cornac-bpr":
        cls, runs, unit = cornac.models.BPR, spec["epochs"], "epoch"
        settings.update(max_iter=1, num_threads=1)
    else:
        cls, runs, unit = cornac.models.VAECF, spec["epochs"], "epoch"
        settings.update(n_epochs=1)
    for _ in range(runs):
        model = cls(**settings, seed=SEED, verbose=False)
        started = time.perf_counter()
        model.fit(train_set)
        seconds.append(time.perf_counter() - started)
    return {"seconds": seconds, "unit": unit, "torch_threads": threads.get("torch_threads")}


def _measure_recbole(spec: dict) -> dict:
    import logging

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    settings = dict(spec["settings"])
    name, negatives = settings.pop("model"), settings.pop("negatives", None)
    folder = Path(spec["folder"])
    config = Config(
        model=name,
        dataset="peers",
        config_dict={
            **settings,
            "data_path": str(folder / "recbole"),
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]},
            "train_neg_sample_args": {"distribution": "uniform", "sample_num": negatives} if negatives else None,
            "epochs": spec["epochs"],
            "seed": SEED,
            "reproducibility": True,
            "device": "cpu",
            "use_gpu": False,
            "worker": 0,
            "show_progress": False,
            "checkpoint_dir": str(folder / "recbole-saved"),
            "log_wandb": False,
        },
    )
    logging.getLogger().setLevel(logging.ERROR)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    model = get_model(name)(config, train_data.dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], name)(config, model)
    threads = _limit_threads()  # after RecBole's set-up, which may have touched torch's
    seconds = []
    for epoch in range(spec["epochs"]):
        started = time.perf_counter()
        trainer._train_epoch(train_data, epoch, show_progress=False)  # the epoch alone: fit() would also evaluate
        seconds.append(time.perf_counter() - started)
    return {"seconds": seconds, "unit": "epoch", "torch_threads": threads.get("torch_threads"),
            "rows_per_batch": train_data._batch_size, "positives_or_users_per_batch": train_data.step, "training_rows": len(train_data.dataset)}  # fmt: skip


def measure_one(spec: dict) -> dict:
    """One measurement, in this process (started by :func:`run_child`)."""
    measure = {"ours": _measure_ours, "implicit": _measure_implicit, "cornac": _measure_cornac, "RecBole": _measure_recbole}[
        spec["library"]
    ]
    return measure(spec)


# ---------------------------------------------------------------------------- parent: data, runs, table


def prepare_data(data_path: str, folder: Path) -> dict:
    """ml-100k split as ours splits it; the training rows for implicit/cornac (npz) and RecBole (atomic files)."""
    import numpy as np

    from recsys_core.datasets import read_ml100k
    from recsys_core.splits import leave_one_out

    data = read_ml100k(data_path)
    split = leave_one_out(data)
    train = split.train
    np.savez(folder / "train.npz", user=train.user, item=train.item, n_users=train.n_users, n_items=train.n_items)
    # RecBole reads pre-split files: train is what it trains on; validation and test are only loaded
    # (it requires them), never evaluated here. Ids are our indices, as tokens.
    recbole = folder / "recbole" / "peers"
    recbole.mkdir(parents=True)
    for part, rows in (("train", train), ("valid", split.validation), ("test", split.test)):
        lines = ["user_id:token\titem_id:token"] + [f"{u}\t{i}" for u, i in zip(rows.user.tolist(), rows.item.tolist())]
        (recbole / f"peers.{part}.inter").write_text("\n".join(lines) + "\n")
    return {"users": train.n_users, "items": train.n_items, "training_rows": len(train)}


def run_child(spec: dict, python: str) -> dict:
    """One measurement in its own process, with the 1-minute load average before and after it."""
    env = {**os.environ, **{variable: "1" for variable in THREAD_VARIABLES}}
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    outcome = _common.run_child([python, str(Path(__file__).resolve()), "--one", json.dumps(spec)], env=env, cwd=spec["folder"])
    result = {"library": spec["library"], "kind": spec.get("kind", spec.get("model")), "variant": spec.get("variant"),
              "load_before": load_before, "load_after": os.getloadavg()[0], "process_seconds": time.perf_counter() - started}  # fmt: skip
    if outcome.result is None:
        result["error"] = outcome.problem
        print(f"  {spec['library']} {result['kind']}: FAILED: {result['error']}", file=sys.stderr, flush=True)
        return result
    result.update(outcome.result)
    print(f"  {spec['library']} {result['kind']} {result.get('variant') or ''}: {[round(s, 3) for s in result['seconds']]} s per {result['unit']}, "
          f"load {load_before:.2f}", flush=True)  # fmt: skip
    return result


def _resolve_overrides(model_name: str, wanted: dict) -> tuple[dict | None, str]:
    """The overrides a model's config can take, or None and why not."""
    from recsys_core.models import config_fields

    fields = {f["name"]: f["default"] for f in config_fields(model_name)}
    overrides, missing = {}, []
    for alternatives, value in wanted.items():
        name = next((a for a in alternatives if a in fields), None)
        if name is None:
            missing.append("/".join(alternatives))
        else:
            overrides[name] = list(value) if isinstance(value, tuple) else value
    if missing:
        return None, f"its config has no setting for {', '.join(missing)}"
    return overrides, ""


def _same_config(model_name: str, first: dict, second: dict) -> bool:
    from recsys_core.models import create_model

    return create_model(model_name, **first).config == create_model(model_name, **second).config


def _median(runs: list[dict], warmup: int) -> float | None:
    values = [s for r in runs if "seconds" in r for s in (r["seconds"][warmup:] if r["unit"] == "epoch" else r["seconds"])]
    return statistics.median(values) if values else None


def _unit(runs: list[dict]) -> str | None:
    """ "epoch" or "fit" (a closed-form model's whole fit), as the runs measured it."""
    return next((r["unit"] for r in runs if "unit" in r), None)


def _loads(runs: list[dict]) -> str:
    loads = [x for r in runs for x in (r["load_before"], r["load_after"])]
    return f"{min(loads):.1f}–{max(loads):.1f}" if loads else ""


def _describe(settings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def compare(key: str, args: argparse.Namespace, folder: Path, recbole_python: str | None) -> tuple[list[dict], dict]:
    """Interleaved runs of ours and each peer for one model; table rows and the raw measurements."""
    from recsys_core.models import MODEL_NAMES

    comparison = COMPARISONS[key]
    epochs = args.epochs + args.warmup
    common = {"folder": str(folder), "data": args.data, "epochs": epochs}
    notes: list[str] = []
    ours: list[dict] = []  # the variants of ours that run
    if comparison["ours"] not in MODEL_NAMES:
        notes.append(f"ours: no model {comparison['ours']!r} in recsys_core.models yet, so only the peer is timed")
    else:
        default, why = _resolve_overrides(comparison["ours"], comparison["ours_default"])
        at_peer, why_peer = _resolve_overrides(comparison["ours"], comparison["ours_at_peer"])
        if default is None:
            notes.append(f"ours at default: {why}")
        else:
            ours.append({"variant": "default", "overrides": default})
        if at_peer is None:
            notes.append(f"ours at the peer's settings: {why_peer}")
        elif default is not None and _same_config(comparison["ours"], default, at_peer):
            notes.append("ours: its default is the peer's settings")
        else:
            ours.append({"variant": "peer's settings", "overrides": at_peer})
    peers = []
    for peer in comparison["peers"]:
        if peer["library"] == "RecBole" and recbole_python is None:
            notes.append("RecBole not installed (no --recbole-python interpreter)")
            continue
        peers.append(peer)
    ours_specs = [{**common, "library": "ours", "model": comparison["ours"], **o} for o in ours]
    peer_specs = [{**common, **p} for p in peers]
    # Interleaved: ours, peer, ours, peer ...; reversed on every other repeat.
    order = [s for i in range(max(len(ours_specs), len(peer_specs))) for s in (ours_specs[i : i + 1] + peer_specs[i : i + 1])]
    runs: list[list[dict]] = [[] for _ in order]
    print(f"{comparison['label']}:", flush=True)
    for repeat in range(args.repeats):
        for index in range(len(order)) if repeat % 2 == 0 else reversed(range(len(order))):
            spec = order[index]
            python = recbole_python if spec["library"] == "RecBole" else sys.executable
            runs[index].append(run_child(spec, python))
    for note in notes:
        print(f"  note: {note}", flush=True)
    ours_runs = [(s, r) for s, r in zip(order, runs) if s["library"] == "ours"]
    peer_runs = [(s, r) for s, r in zip(order, runs) if s["library"] != "ours"]
    rows = []
    for peer_spec, peer_result in peer_runs or [(None, [])]:
        peer_seconds = _median(peer_result, args.warmup)
        for ours_spec, ours_result in ours_runs or [(None, [])]:
            ours_seconds = _median(ours_result, args.warmup)
            errors = [r["error"] for r in ours_result + peer_result if "error" in r]
            threads = sorted({r["torch_threads"] for r in ours_result + peer_result if (r.get("torch_threads") or 1) > 1})
            ours_unit, peer_unit = _unit(ours_result), _unit(peer_result)
            ratio = f"{ours_seconds / peer_seconds:.2f}" if ours_seconds and peer_seconds and ours_unit == peer_unit else "–"
            settings = [comparison["peer_settings"], *([peer_spec["note"]] if peer_spec and peer_spec.get("note") else []), *notes]
            rows.append({
                "model": comparison["label"],
                "ours s/epoch": "–" if ours_seconds is None else f"{ours_seconds:.3f}" + (" (fit)" if ours_unit == "fit" else ""),
                "ours at": "–" if ours_spec is None else ours_spec["variant"] + (f" ({_describe(ours_spec['overrides'])})" if ours_spec["overrides"] else ""),
                "peer": "–" if peer_spec is None else peer_spec["library"],
                "peer s/epoch": "–" if peer_seconds is None else f"{peer_seconds:.3f}" + (" (fit)" if peer_unit == "fit" else ""),
                "ours ÷ peer": ratio,
                "settings": "; ".join(settings)
                + (f"; NOT ONE THREAD: torch ran {threads} threads" if threads else "")
                + ("; FAILED: " + " | ".join(errors) if errors else ""),
                "load (1 min)": _loads(ours_result + peer_result),
            })  # fmt: skip
    return rows, {
        "model": key,
        "label": comparison["label"],
        "notes": notes,
        "runs": [{"spec": s, "results": r} for s, r in zip(order, runs)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2, help="epochs measured per process, after the warm-up")
    parser.add_argument("--warmup", type=int, default=1, help="epochs run first in each process and not counted")
    parser.add_argument("--repeats", type=int, default=2, help="processes per library and model, interleaved")
    parser.add_argument("--models", help="comma-separated subset of " + ",".join(COMPARISONS))
    parser.add_argument("--recbole-python", help=f"interpreter with RecBole installed (default: {RECBOLE_PYTHON} when it exists)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one))))
        return
    keys = args.models.split(",") if args.models else list(COMPARISONS)
    unknown = [k for k in keys if k not in COMPARISONS]
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}; choose from {', '.join(COMPARISONS)}")
    if args.epochs < 1 or args.warmup < 0 or args.repeats < 1:
        parser.error("--epochs and --repeats must be at least 1, --warmup at least 0")
    recbole_python = args.recbole_python or (str(RECBOLE_PYTHON) if RECBOLE_PYTHON.exists() else None)
    if recbole_python and not Path(recbole_python).exists():
        parser.error(
            f"--recbole-python {recbole_python} does not exist; create the environment (see requirements-recbole.txt) or leave it out"
        )
    started = time.perf_counter()
    rows, measurements = [], []
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        folder = Path(tmp)
        data = prepare_data(args.data, folder)
        print(f"ml-100k training rows: {data['training_rows']:,} ({data['users']} users, {data['items']} items)", flush=True)
        for key in keys:
            key_rows, key_measurements = compare(key, args, folder, recbole_python)
            rows += key_rows
            measurements.append(key_measurements)
    columns = ["model", "ours s/epoch", "ours at", "peer", "peer s/epoch", "ours ÷ peer", "settings", "load (1 min)"]
    payload = {"dataset": "ml-100k", "training": data, "epochs": args.epochs, "warmup": args.warmup, "repeats": args.repeats, "threads": 1,
               "recbole_python": recbole_python, "seconds": time.perf_counter() - started, "rows": rows, "measurements": measurements}  # fmt: skip
    write("peers", payload, markdown_table(rows, columns))


if __name__ == "__main__":
    main()
