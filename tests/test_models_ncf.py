"""BPR-MF and the NCF family (GMF, MLP, NeuMF): the shared contract, unit checks, one real run."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from model_contract import ModelContract, checkerboard

from recsys_core.errors import ModelError
from recsys_core.models import create_model
from recsys_core.models.ncf import NCFNetwork
from recsys_core.trainer import fit_model


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These small models train fastest on one thread; with two, a CPU busy with other work makes
    every tiny op wait for both threads, and training gets many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Small, fast settings for the 24 × 24 checkerboard (no validation there, so every epoch runs). The
# held-out item u is an unseen item of user u, so it is drawn as a negative now and then: small
# embeddings and few epochs keep the models from memorising that (checked for seeds 0-3). Towers
# narrower than (32, 16, 8) can die at the start (every ReLU off) on so little data.
SMALL = {"epochs": 10, "batch_size": 64, "learning_rate": 0.01}


class TestBPR(ModelContract):
    model_name = "bpr"
    overrides = {**SMALL, "embedding_size": 4, "n_negatives": 2}


class TestGMF(ModelContract):
    model_name = "gmf"
    overrides = {**SMALL, "embedding_size": 4}


class TestMLP(ModelContract):
    model_name = "mlp"
    overrides = {**SMALL, "layers": (32, 16, 8)}


class TestNeuMF(ModelContract):
    model_name = "neumf"
    overrides = {**SMALL, "embedding_size": 4, "layers": (32, 16, 8)}


class TestNeuMFPretrained(ModelContract):
    model_name = "neumf"
    overrides = {**SMALL, "embedding_size": 4, "layers": (32, 16, 8), "pretrain": True}

    def test_sub_models_were_trained_first(self, model):
        assert set(model.meta["pretrained"]) == {"gmf", "mlp"}
        assert model.meta["pretrained"]["gmf"]["epochs_run"] == SMALL["epochs"]


# ---------------------------------------------------------------------------- unit checks


def _network(gmf_size=0, layers=(), seed=0, n_users=5, n_items=7):
    torch.manual_seed(seed)
    net = NCFNetwork(n_users, n_items, gmf_size=gmf_size, layers=layers)
    with torch.no_grad():  # larger weights than the N(0, 0.01) start, so differences would show
        for p in net.parameters():
            p.normal_(0.0, 0.5)
    return net.eval()


def test_mlp_tower_shapes():
    net = _network(layers=(64, 32, 16, 8))
    assert net.gmf is None
    assert net.mlp.user.weight.shape == (5, 32) and net.mlp.item.weight.shape == (7, 32)
    assert [tuple(layer.weight.shape) for layer in net.mlp.tower] == [(32, 64), (16, 32), (8, 16)]
    assert tuple(net.output.weight.shape) == (1, 8)
    model = create_model("mlp")
    assert model.config.layers == (64, 32, 16, 8)


def test_mlp_forward_matches_the_concatenated_tower():
    """The split first layer (user half + precomputed item half) equals the tower on [p_u; q_i]."""
    net = _network(layers=(8, 6, 4))
    users, items = torch.tensor([0, 3, 4]), torch.tensor([[1, 2], [6, 0], [3, 3]])
    x = torch.cat([net.mlp.user(users)[:, None, :].expand(-1, 2, -1), net.mlp.item(items)], dim=-1)
    for layer in net.mlp.tower:
        x = torch.relu(layer(x))
    expected = net.output(x).squeeze(-1)
    torch.testing.assert_close(net(users, items), expected)
    # Full scoring (item side shared by all rows) agrees with candidate scoring.
    full = net.combine(net.user_vectors(users), net.item_features(None))
    torch.testing.assert_close(torch.gather(full, 1, items), expected)


def test_neumf_concatenates_the_gmf_and_mlp_vectors():
    net = _network(gmf_size=3, layers=(8, 6, 4))
    assert tuple(net.output.weight.shape) == (1, 3 + 4)
    users, items = torch.tensor([1, 2]), torch.tensor([[0, 5, 6], [4, 4, 1]])
    gmf = net.gmf.user(users)[:, None, :] * net.gmf.item(items)
    x = torch.cat([net.mlp.user(users)[:, None, :].expand(-1, 3, -1), net.mlp.item(items)], dim=-1)
    for layer in net.mlp.tower:
        x = torch.relu(layer(x))
    last = torch.cat([gmf, x], dim=-1)
    torch.testing.assert_close(net.last_vector(users, items), last)
    torch.testing.assert_close(net(users, items), net.output(last).squeeze(-1))
    # Embeddings for the app: GMF and MLP tables side by side.
    assert net.user_table().shape == (5, 3 + 4) and net.item_table().shape == (7, 3 + 4)


def test_pretrained_neumf_mixes_output_weights_with_alpha():
    gmf, mlp = _network(gmf_size=3, seed=1), _network(layers=(8, 6, 4), seed=2)
    neumf = _network(gmf_size=3, layers=(8, 6, 4), seed=3)
    alpha = 0.3
    neumf.load_pretrained(gmf, mlp, alpha)
    torch.testing.assert_close(neumf.output.weight[0, :3], alpha * gmf.output.weight[0])
    torch.testing.assert_close(neumf.output.weight[0, 3:], (1 - alpha) * mlp.output.weight[0])
    torch.testing.assert_close(neumf.output.bias, alpha * gmf.output.bias + (1 - alpha) * mlp.output.bias)
    torch.testing.assert_close(neumf.gmf.item.weight, gmf.gmf.item.weight)
    torch.testing.assert_close(neumf.mlp.tower[1].weight, mlp.mlp.tower[1].weight)
    # So the NeuMF logit is exactly the α-mix of the two pretrained logits.
    users, items = torch.arange(5), torch.arange(7).repeat(5, 1)
    torch.testing.assert_close(neumf(users, items), alpha * gmf(users, items) + (1 - alpha) * mlp(users, items))


def test_losses_on_a_tiny_input():
    pos, neg = torch.tensor([[2.0], [0.0]]), torch.tensor([[1.0, -1.0], [0.0, 3.0]])
    bpr = create_model("bpr").pair_loss(pos, neg)
    expected = torch.tensor([(np.log1p(np.exp(-1.0)) + np.log1p(np.exp(-3.0))) / 2, (np.log(2.0) + np.log1p(np.exp(3.0))) / 2])
    torch.testing.assert_close(bpr, expected.float())
    bce = create_model("gmf").pair_loss(pos, neg)  # −log σ(pos) − Σ log(1 − σ(neg))
    sig = torch.sigmoid
    expected = -torch.log(sig(pos[:, 0])) - torch.log(1 - sig(neg)).sum(-1)
    torch.testing.assert_close(bce, expected)


def test_invalid_tower_is_a_clear_error():
    with pytest.raises(ModelError, match="not a valid MLP tower"):
        fit_model(create_model("mlp", layers=(15, 8)), checkerboard(), device="cpu")


def test_fold_in_leaves_the_trained_model_untouched():
    data = checkerboard()
    model = fit_model(create_model("neumf", **TestNeuMF.overrides), data, device="cpu", seed=0)
    before = {k: v.clone() for k, v in model.network.state_dict().items()}
    model.network.zero_grad(set_to_none=True)  # the last training step's gradients
    rows = data.to_csr()[[0, 1, 5]]
    empty = sp.csr_matrix((1, data.n_items), dtype=np.float32)
    scores = model.score_histories(sp.vstack([rows, empty]).tocsr())
    assert scores.shape == (4, data.n_items) and np.isfinite(scores).all()
    for k, v in model.network.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert all(p.grad is None for p in model.network.parameters())
    # The same history always folds in to the same scores (the negatives come from a fixed seed).
    np.testing.assert_allclose(model.score_histories(rows[:1])[0], model.fold_in(rows[0].indices), rtol=1e-6)


# ---------------------------------------------------------------------------- sparse embedding updates


def _user_and_item_tables(network):
    if isinstance(network, NCFNetwork):
        parts = [part for part in (network.gmf, network.mlp) if part is not None]
        return [part.user for part in parts], [part.item for part in parts]
    return [network.user], [network.item, network.bias]


@pytest.mark.parametrize("name", ["bpr", "gmf", "mlp", "neumf"])
def test_a_step_changes_only_the_embedding_rows_its_batch_used(name, monkeypatch):
    """Large tables, lazy Adam on sparse gradients: a row no example of the batch touched keeps its
    value (dense Adam would move every row with its stale moments, and cost a pass over whole
    tables per step)."""
    from model_contract import bare_context

    from recsys_core.models import optimizers

    monkeypatch.setattr(optimizers, "SPARSE_GRADIENT_MIN_ROWS", 10)  # the checkerboard's tables count as large
    data = checkerboard()
    model = create_model(name, **{"pretrain": False} if name == "neumf" else {})
    model.begin_fit(bare_context(), data)
    user_tables, item_tables = _user_and_item_tables(model.network)
    assert all(table.sparse for table in user_tables + item_tables)
    assert "SparseAdam" in repr(model.optimizer)
    model.train_step(lambda: model.network(torch.tensor([0, 2]), torch.tensor([[4], [6]])).sum())
    # The second step uses other rows: dense Adam would move rows 0, 2, 4 and 6 again with their moments.
    users, items = torch.tensor([1, 3]), torch.tensor([[5], [9]])
    before = [table.weight.detach().clone() for table in user_tables + item_tables]
    model.train_step(lambda: model.network(users, items).sum())
    used = [users] * len(user_tables) + [items.ravel()] * len(item_tables)
    for table, old, rows in zip(user_tables + item_tables, before, used, strict=True):
        moved = (table.weight.detach() != old).any(dim=1)
        assert set(torch.nonzero(moved).ravel().tolist()) == set(rows.tolist())


@pytest.mark.parametrize("name", ["bpr", "gmf", "mlp", "neumf"])
def test_small_tables_take_dense_gradients_and_fused_adam(name):
    """Below the measured threshold a dense step is cheaper: every table is dense, one fused Adam."""
    from model_contract import bare_context

    from recsys_core.models.optimizers import SPARSE_GRADIENT_MIN_ROWS, embedding_tables

    data = checkerboard()
    assert data.n_users + data.n_items < SPARSE_GRADIENT_MIN_ROWS
    model = create_model(name, **{"pretrain": False} if name == "neumf" else {})
    model.begin_fit(bare_context(), data)
    assert not any(table.sparse for table in embedding_tables(model.network))
    assert repr(model.optimizer) == "Optimizers(Adam)"
    before = model.network.user_table().detach().clone()
    model.train_step(lambda: model.network(torch.tensor([0, 2]), torch.tensor([[4], [6]])).sum())
    assert not torch.equal(before, model.network.user_table().detach())


def test_ncf_weight_decay_is_an_l2_penalty_on_the_rows_each_example_uses():
    data = checkerboard()
    norms = {}
    for decay in (0.0, 0.05):
        model = fit_model(create_model("gmf", weight_decay=decay, **SMALL), data, device="cpu", seed=0)
        norms[decay] = float(model.network.user_table().detach().norm())
    assert norms[0.05] < 0.7 * norms[0.0], norms


# ---------------------------------------------------------------------------- a real run


@pytest.mark.slow
def test_neumf_on_ml100k_beats_popularity_by_far(ml100k):
    from recsys_core.evaluation import Evaluator
    from recsys_core.splits import leave_one_out

    split = leave_one_out(ml100k, seed=0)
    model = fit_model(create_model("neumf", epochs=3, batch_size=1024), split.train, split, device="cpu", seed=0)  # 3 short epochs: smaller batches
    result = Evaluator(split, "test", "loo-sampled").evaluate(model)
    assert result.metrics["HR@10"] > 0.55, result.summary()  # popularity: about 0.41
