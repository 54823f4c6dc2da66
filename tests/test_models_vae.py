"""Mult-VAE, Mult-DAE and SVAE: the shared contract, unit checks and short real runs on MovieLens 100K."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from model_contract import ModelContract, checkerboard

from recsys_core.evaluation import Evaluator
from recsys_core.interactions import Interactions
from recsys_core.models import create_model
from recsys_core.models.svae import SVAENetwork, next_items_nll, next_k_targets, pad_sequences
from recsys_core.models.vae import MultAutoencoderNetwork, gaussian_kl, kl_weight, multinomial_nll
from recsys_core.splits import leave_one_out
from recsys_core.trainer import Trainer, fit_model

SMALL_SVAE = {"embedding_size": 16, "rnn_size": 16, "hidden_size": 16, "latent_size": 8, "batch_size": 8, "learning_rate": 2e-2}


class TestMultVAE(ModelContract):
    model_name = "multvae"
    overrides = {"layers": (16, 8), "epochs": 20, "batch_size": 8, "learning_rate": 3e-2, "dropout": 0.2}


class TestMultDAE(ModelContract):
    model_name = "multdae"
    overrides = {"layers": (16,), "epochs": 20, "batch_size": 8, "learning_rate": 3e-2, "dropout": 0.2}


class TestSVAE(ModelContract):
    model_name = "svae"
    overrides = {**SMALL_SVAE, "epochs": 20}


# ---------------------------------------------------------------- KL annealing
def test_kl_weight_rises_linearly_to_the_cap():
    assert [kl_weight(u, 2000, 0.2) for u in (0, 1, 100, 399, 400, 401, 10_000)] == pytest.approx(
        [0.0, 0.0005, 0.05, 0.1995, 0.2, 0.2, 0.2]
    )
    assert kl_weight(0, 0, 0.2) == 0.2 and kl_weight(7, 0, 0.5) == 0.5  # 0 steps: the cap from the start


def test_multvae_anneals_beta_per_update():
    # checkerboard: 24 users, batch 8 → 3 updates per epoch; β of an epoch's last update is reported
    model = create_model("multvae", layers=(8, 4), epochs=4, batch_size=8, total_anneal_steps=30, beta_cap=0.2)
    history = Trainer(device="cpu", seed=0).fit(model, checkerboard())
    betas = [e["beta"] for e in history.epochs]
    assert betas == pytest.approx([min(0.2, (3 * e - 1) / 30) for e in range(1, 5)])
    assert model.update_count == 12
    # default: β reaches the cap at the last epoch (epochs × updates per epoch ÷ cap)
    auto = create_model("multvae", layers=(8, 4), epochs=5, batch_size=8)
    auto_history = Trainer(device="cpu", seed=0).fit(auto, checkerboard())
    assert auto.meta["total_anneal_steps"] == 5 * 3 / 0.2
    assert auto_history.epochs[-1]["beta"] == pytest.approx(0.2 * 14 / 15)


# ---------------------------------------------------------------- losses on hand-made examples
def test_multinomial_nll_and_kl_by_hand():
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))  # softmax = 0.1, 0.2, 0.3, 0.4
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert multinomial_nll(logits, x).item() == pytest.approx(-(math.log(0.1) + math.log(0.3)), rel=1e-6)
    # shifting every logit leaves the multinomial unchanged
    assert multinomial_nll(logits + 5.0, x).item() == pytest.approx(multinomial_nll(logits, x).item(), rel=1e-6)
    mu, logvar = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, math.log(2.0)]])
    # per dimension 0.5 (σ² + μ² − 1 − log σ²): 0 for N(0,1); 0.5 (2 + 1 − 1 − log 2) for N(1, 2)
    assert gaussian_kl(mu, logvar).item() == pytest.approx(0.5 * (2.0 - math.log(2.0)), rel=1e-6)


def test_next_k_targets_and_their_loss_by_hand():
    pad = 9
    sequences = torch.tensor([[3, 1, 4, pad], [2, 7, pad, pad]])
    targets = next_k_targets(sequences, 2, pad)
    assert targets.tolist() == [[[1, 4], [4, pad], [pad, pad], [pad, pad]], [[7, pad], [pad, pad], [pad, pad], [pad, pad]]]
    logits = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]))
    nll = next_items_nll(logits, torch.tensor([[0, 2], [3, pad]]), pad)
    assert nll.tolist() == pytest.approx([-(math.log(0.1) + math.log(0.3)) / 2, -math.log(0.4)], rel=1e-6)


def test_pad_sequences_keeps_the_latest_items():
    items = np.array([5, 6, 7, 8, 9, 1, 2])  # user 0: 5 6 7 8 9, user 1: 1 2, user 2: none
    padded, kept = pad_sequences(items, np.array([0, 5, 7]), np.array([5, 2, 0]), max_length=3, pad=-1)
    assert padded.tolist() == [[7, 8, 9], [1, 2, -1], [-1, -1, -1]]
    assert kept.tolist() == [3, 2, 0]


# ---------------------------------------------------------------- eval mode: the mean, no dropout
def test_multvae_eval_mode_uses_the_mean_without_dropout():
    torch.manual_seed(0)
    network = MultAutoencoderNetwork(n_items=12, layers=(6, 3), dropout=0.5, variational=True)
    x = (torch.rand(5, 12) < 0.4).float()
    network.eval()
    logits, mu, logvar = network(x)
    h = torch.nn.functional.normalize(x, dim=1)  # no dropout
    h = network.encoder[1](torch.tanh(network.encoder[0](h)))
    np.testing.assert_allclose(mu.detach(), h[:, :3].detach(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits.detach(), network.decode(h[:, :3]).detach(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(network(x)[0].detach(), logits.detach())  # deterministic
    network.train()
    assert not torch.allclose(network(x)[0], network(x)[0])  # sampled z and dropout in training


def test_svae_eval_mode_uses_the_mean():
    torch.manual_seed(0)
    network = SVAENetwork(n_items=10, embedding_size=4, rnn_size=5, hidden_size=6, latent_size=3, dropout=0.5)
    states = network.states(torch.tensor([[1, 2, 3]]))
    network.eval()
    logits, mu, _ = network(states[0])
    np.testing.assert_allclose(logits.detach(), network.decode(mu).detach(), rtol=1e-6)
    network.train()
    assert not torch.allclose(network(states[0])[0], network(states[0])[0])


# ---------------------------------------------------------------- SVAE: time order of histories
def _tiny_timed() -> Interactions:
    frame = pd.DataFrame(
        {
            "user": [0, 0, 0, 0, 1, 1, 0],
            "item": [10, 11, 12, 13, 11, 12, 11],
            "timestamp": [5, 1, 3, 3, 2, 1, 9],  # 12 and 13 tie at 3; (0, 11) repeated at 1 and 9
        }
    )
    return Interactions.from_frame(frame, "user", "item", timestamp_col="timestamp")


def test_svae_orders_items_by_time_ties_by_row_order_repeats_at_latest():
    data = _tiny_timed()
    items, indptr = create_model("svae").time_ordered(data)
    raw = np.asarray(data.items.ids)[items]
    assert raw[indptr[0] : indptr[1]].tolist() == [12, 13, 10, 11]
    assert raw[indptr[1] : indptr[2]].tolist() == [12, 11]


@pytest.fixture(scope="module")
def svae_model():
    return fit_model(create_model("svae", **SMALL_SVAE, epochs=15), checkerboard(), device="cpu", seed=0)


def test_svae_known_user_is_scored_from_its_stored_order_plus_new_items(svae_model):
    model = svae_model
    user = 4
    stored = model.sequence_items[model.sequence_indptr[user] : model.sequence_indptr[user + 1]]
    np.testing.assert_allclose(model.score(np.array([user]))[0], model.fold_in(stored), rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.fold_in(stored), model.fold_in(stored[::-1]))  # order matters
    # a history with one more item (e.g. the validation item): the stored order, then that item
    history = model.known.tolil()
    history[user, user] = 1.0
    scores = model.score(np.array([user]), history=history.tocsr())[0]
    np.testing.assert_allclose(scores, model.fold_in(np.append(stored, user)), rtol=1e-5, atol=1e-6)
    # a history without one of the stored items: that item is left out of the sequence
    history = model.known.tolil()
    history[user, stored[2]] = 0.0
    scores = model.score(np.array([user]), history=history.tocsr())[0]
    np.testing.assert_allclose(scores, model.fold_in(np.delete(stored, 2)), rtol=1e-5, atol=1e-6)


def test_svae_fold_in_keeps_the_given_order(svae_model):
    row = svae_model.history_row(np.array([6, 2, 8, 2]))
    assert row.indices.tolist() == [6, 8, 2]  # a repeated item counts at its last position
    np.testing.assert_allclose(svae_model.score_histories(row)[0], svae_model.fold_in([6, 8, 2]), rtol=1e-6)


# ---------------------------------------------------------------- short real runs on MovieLens 100K
@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread while this module runs: these small CPU models slow down badly when two
    threads share a busy machine. The previous setting is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ml100k_split(ml100k):
    split = leave_one_out(ml100k, seed=0)
    return split, Evaluator(split, "test", "loo-sampled")


@pytest.mark.slow
def test_multvae_on_ml100k_beats_popularity_by_far(ml100k_split):
    split, test = ml100k_split
    model = fit_model(create_model("multvae", epochs=30), split.train, device="cpu", seed=0)  # defaults otherwise, no early stopping
    hr = test.evaluate(model).metrics["HR@10"]
    assert hr >= 0.58, f"HR@10 {hr:.3f} (popularity ≈ 0.41)"


@pytest.mark.slow
def test_svae_on_ml100k_beats_popularity_by_far(ml100k_split):
    split, test = ml100k_split
    model = fit_model(create_model("svae", epochs=4, max_length=30, batch_size=64), split.train, device="cpu", seed=0)
    hr = test.evaluate(model).metrics["HR@10"]
    assert hr >= 0.55, f"HR@10 {hr:.3f} (popularity ≈ 0.41)"
