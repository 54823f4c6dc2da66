"""AutoRec, DeepRec and CDAE: the shared contract, unit checks of what makes each model itself,
and short real runs on MovieLens 100K."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from model_contract import ModelContract, N, bare_context, checkerboard

from recsys_core.errors import ModelError
from recsys_core.evaluation import Evaluator
from recsys_core.interactions import Interactions
from recsys_core.models import create_model
from recsys_core.models.rating_autoencoders import masked_squared_error
from recsys_core.splits import leave_one_out, ratio_split
from recsys_core.trainer import fit_model


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on a shared 2-core machine, two threads per process oversubscribe the CPU
    and small autoencoder steps slow down many times over."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class RatingContract(ModelContract):
    """The contract on the rated checkerboard, plus a check of the predicted ratings themselves."""

    ratings = True

    def test_predicted_ratings_follow_the_board(self, model, data):
        users = np.arange(N)
        diagonal = model.predict_ratings(users, users)  # held out, same parity: liked
        other = model.predict_ratings(users, (users + 1) % N)
        assert diagonal.min() > other.max()
        assert diagonal.max() <= 5.0 and other.min() >= 1.0


class TestAutoRec(RatingContract):
    model_name = "autorec"
    overrides = {"hidden": 16, "epochs": 60, "learning_rate": 0.01, "weight_decay": 0.1}


class TestDeepRec(RatingContract):
    model_name = "deeprec"
    overrides = {"layers": (16, 8), "dropout": 0.0, "epochs": 60, "learning_rate": 0.01, "weight_decay": 0.0}


class TestCDAE(ModelContract):
    model_name = "cdae"
    overrides = {"hidden": 16, "epochs": 60, "learning_rate": 0.01, "corruption": 0.2}


class TestCDAESampledNegatives(ModelContract):
    model_name = "cdae"
    overrides = {"hidden": 16, "epochs": 60, "learning_rate": 0.01, "corruption": 0.2, "n_negatives": 2}


# ------------------------------------------------------------------------------------ unit checks


def tiny_ratings() -> Interactions:
    frame = pd.DataFrame(
        {
            "user": [0, 0, 0, 1, 1, 2, 2, 2, 3, 3],
            "item": [0, 1, 2, 0, 3, 1, 2, 4, 3, 4],
            "rating": [5.0, 4.0, 1.0, 4.0, 2.0, 5.0, 3.0, 2.0, 1.0, 4.0],
        }
    )
    return Interactions.from_frame(frame, "user", "item", rating_col="rating", name="tiny")


def test_masked_squared_error_counts_observed_entries_only():
    target = torch.tensor([[4.0, 0.0, 2.0], [0.0, 5.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    predicted = torch.tensor([[3.5, 9.0, 3.0], [-7.0, 4.0, 2.0]], requires_grad=True)
    loss = masked_squared_error(predicted, target, mask)
    assert loss.item() == pytest.approx(0.5**2 + 1.0**2 + 1.0**2)
    loss.backward()
    # d/dŷ (ŷ − r)² = 2(ŷ − r) on observed entries, exactly 0 elsewhere
    expected = torch.tensor([[-1.0, 0.0, 2.0], [0.0, -2.0, 0.0]])
    assert torch.equal(predicted.grad, expected)
    # whatever the model predicts where nothing was observed changes nothing
    moved = predicted.detach() + (1 - mask) * 100.0
    assert masked_squared_error(moved, target, mask).item() == pytest.approx(loss.item())


def test_autorec_epoch_loss_is_the_papers_objective():
    data = tiny_ratings()
    model = create_model("autorec", hidden=3, weight_decay=2.0, batch_size=100)
    model.begin_fit(bare_context(), data)
    net = model.network
    with torch.no_grad():
        r = torch.as_tensor(model.ratings.T.toarray())  # items × users, 0 = unrated
        h = net(r)
        sse = (((h - r) * (r > 0)) ** 2).sum()
        objective = sse + 2.0 / 2 * (net.encoder.weight.pow(2).sum() + net.decoder.weight.pow(2).sum())
    stats = model.train_epoch(bare_context(), 1)  # one batch: the loss is computed before the step
    assert stats["loss"] == pytest.approx(float(objective) / len(data), rel=1e-5)


@pytest.mark.parametrize("hidden", [2, 8])  # shorter and longer than the history: dual and primal ridge
def test_autorec_fold_in_is_closed_form_ridge(hidden):
    data = tiny_ratings()
    model = fit_model(create_model("autorec", hidden=hidden, epochs=5, weight_decay=0.5), data, device="cpu", seed=0)
    items, ratings = np.array([0, 2, 3, 4]), np.array([5.0, 1.0, 4.0, 2.0])
    codes = model.item_embeddings().astype(np.float64)
    bias = model.network.decoder.bias.detach().double().mean().item()
    h = codes[items]
    w = np.linalg.solve(h.T @ h + 0.5 / 2 * np.eye(hidden), h.T @ (ratings - bias))
    np.testing.assert_allclose(model.fold_in(items, ratings), codes @ w + bias, rtol=1e-4, atol=1e-4)


def test_rating_fold_in_reads_bare_ids_as_liked():
    model = fit_model(create_model("autorec", hidden=4, epochs=3), tiny_ratings(), device="cpu", seed=0)
    assert model.meta["high_rating"] == 5.0
    np.testing.assert_allclose(model.fold_in([1, 3]), model.fold_in([1, 3], [5.0, 5.0]), rtol=1e-6)
    assert not np.allclose(model.fold_in([1, 3]), model.fold_in([1, 3], [2.0, 4.0]))


def test_rating_models_read_ratings_and_fill_new_history_items_with_the_users_mean():
    data = tiny_ratings()
    model = fit_model(create_model("deeprec", layers=(4,), epochs=1), data, device="cpu", seed=0)
    known = model.known[np.array([0, 1])].tolil()
    known[0, 4] = 1  # e.g. the validation item at test time: no training rating
    rows = known.tocsr()
    x = model._known_input(np.array([0, 1]), rows).numpy()
    np.testing.assert_allclose(x[0], [5.0, 4.0, 1.0, 0.0, 10.0 / 3])
    np.testing.assert_allclose(x[1], [4.0, 0.0, 0.0, 2.0, 0.0])
    # the history decides what is read: the same user with the validation item scores differently
    assert not np.allclose(model.score(np.array([0]), history=rows), model.score(np.array([0])))


def test_predicted_ratings_are_clipped_and_unrated_items_get_the_mean():
    frame = pd.DataFrame({"user": [0, 0, 1, 1, 2], "item": [0, 1, 0, 2, 3], "rating": [1.0, 2.0, 2.0, 1.0, 3.0]})
    data = Interactions.from_frame(frame, "user", "item", rating_col="rating")
    train = data.subset(np.array([0, 1, 2, 3]))  # item 3 and user 2 have no training rating
    for name in ("autorec", "deeprec"):
        model = fit_model(
            create_model(name, epochs=2, **({"hidden": 4} if name == "autorec" else {"layers": (4,)})), train, device="cpu", seed=0
        )
        predicted = model.predict_ratings(np.array([0, 0, 1, 2, 0]), np.array([0, 3, 1, 0, 2]))
        mean = float(np.mean([1.0, 2.0, 2.0, 1.0]))
        assert predicted[1] == pytest.approx(mean) and predicted[3] == pytest.approx(mean)
        assert ((predicted >= 1.0) & (predicted <= 2.0)).all()


def test_rating_models_need_ratings():
    with pytest.raises(ModelError, match="rating"):
        fit_model(create_model("autorec", epochs=1), checkerboard(), device="cpu")


@pytest.mark.parametrize("refeed, passes", [(True, 2), (False, 1)])
def test_dense_refeeding_feeds_the_output_back(refeed, passes):
    data = tiny_ratings()
    model = create_model("deeprec", layers=(4, 3), dropout=0.0, batch_size=100, dense_refeeding=refeed)
    model.begin_fit(bare_context(), data)
    calls = []
    model.network.register_forward_hook(lambda module, args, output: calls.append((args[0].detach().clone(), output.detach().clone())))
    steps = []
    original_step = model.optimizer.step
    model.optimizer.step = lambda *a, **k: (steps.append(1), original_step(*a, **k))[1]
    stats = model.train_epoch(bare_context(), 1)
    assert len(calls) == passes and len(steps) == passes  # one batch: each pass has its own update
    first_input, first_output = calls[0]
    order = np.random.default_rng(0).permutation(data.n_users)  # the batch's shuffled users
    assert torch.equal(first_input, torch.as_tensor(model.ratings[order].toarray()))  # the sparse ratings
    if refeed:
        second_input, _ = calls[1]
        assert torch.equal(second_input, first_output)  # f(x), dense, as the new example
        assert (second_input != 0).all() and "refeed_loss" in stats


def test_cdae_user_node_enters_the_hidden_layer():
    data = checkerboard()
    model = fit_model(create_model("cdae", hidden=8, epochs=3), data, device="cpu", seed=0)
    rows = model.known[np.array([0, 0])]
    model.network.eval()  # no corruption when scoring
    with torch.no_grad():
        node = model.network.user_node.weight
        node[1] += 1.0  # a user node that differs from user 0's
        as_user_0, as_user_1 = model._score_known(np.array([0, 1]), rows).numpy()
        assert not np.allclose(as_user_0, as_user_1)
        node.zero_()  # with a zero node, a known user scores like a folded-in history
        np.testing.assert_allclose(model._score_known(np.array([0]), rows[:1]).numpy(), model._score_new(rows[:1]).numpy(), rtol=1e-6)


def test_cdae_corrupts_its_input_only_while_training():
    model = fit_model(create_model("cdae", hidden=8, epochs=1, corruption=0.5), checkerboard(), device="cpu", seed=0)
    x = torch.ones(4, N)
    model.network.train()
    dropped = model.network.corrupt(x)
    assert set(torch.unique(dropped).tolist()) == {0.0, 2.0}  # kept entries scaled by 1 / (1 − q)
    model.network.eval()
    assert torch.equal(model.network.corrupt(x), x)


# ------------------------------------------------------------------------------------ real runs


@pytest.mark.slow
def test_autorec_rating_prediction_on_ml100k(ml100k):
    split = ratio_split(ml100k, seed=0)
    model = fit_model(create_model("autorec", epochs=12, patience=0), split.train, split, device="cpu", seed=0)
    result = Evaluator(split, "test", "ratings").evaluate(model)
    global_mean = np.sqrt(np.mean((split.test.rating - split.train.rating.mean()) ** 2))  # about 1.11
    assert result.metrics["RMSE"] < global_mean - 0.15, result.metrics  # 12 epochs: about 0.91
    assert result.metrics["RMSE"] < 0.94, result.metrics


@pytest.mark.slow
def test_cdae_ranks_far_above_popularity_on_ml100k(ml100k):
    split = leave_one_out(ml100k, seed=0)
    model = fit_model(create_model("cdae", epochs=30, patience=0), split.train, device="cpu", seed=0)
    result = Evaluator(split, "test", "loo-sampled").evaluate(model)
    assert result.metrics["HR@10"] > 0.58, result.metrics  # 30 epochs: about 0.63; popularity: about 0.41


def test_autoencoder_families_live_in_their_own_modules_under_the_same_names():
    from recsys_core.models import MODEL_NAMES, model_class

    assert {"autorec", "deeprec", "cdae"} <= set(MODEL_NAMES)
    assert model_class("autorec").__module__ == model_class("deeprec").__module__ == "recsys_core.models.rating_autoencoders"
    assert model_class("cdae").__module__ == "recsys_core.models.cdae"
