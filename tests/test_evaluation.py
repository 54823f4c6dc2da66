"""The evaluator: protocols, tie handling, intervals and paired comparisons."""

import numpy as np
import pandas as pd
import pytest

from recsys_core.comparison import paired_comparison, paired_difference_is_significant
from recsys_core.errors import ModelError
from recsys_core.evaluation import EvaluationResult, Evaluator, bootstrap_interval, evaluate
from recsys_core.interactions import Interactions
from recsys_core.models import create_model
from recsys_core.splits import heldout_users, leave_one_out, ratio_split
from recsys_core.trainer import fit_model


@pytest.fixture(scope="module")
def loo(ml100k):
    return leave_one_out(ml100k, seed=0)


def popularity_scorer(split):
    counts = split.train.item_counts().astype(np.float64)

    def score(users, items):
        return np.tile(counts, (len(users), 1)) if items is None else counts[items]

    return score


def test_popularity_hr_on_ml100k_is_in_the_published_range(loo):
    result = Evaluator(loo, "test", "loo-sampled").evaluate(popularity_scorer(loo))
    assert 0.38 <= result.metrics["HR@10"] <= 0.47
    lo, hi = result.intervals["HR@10"]
    assert lo < result.metrics["HR@10"] < hi and hi - lo < 0.08
    assert result.metrics["HR@5"] <= result.metrics["HR@10"] <= result.metrics["HR@20"]
    assert len(result.users) == 943


def test_pop_model_and_pop_function_agree(loo):
    evaluator = Evaluator(loo, "test", "loo-sampled")
    model = fit_model(create_model("pop"), loo.train, device="cpu")
    assert evaluator.evaluate(model).metrics == pytest.approx(evaluator.evaluate(popularity_scorer(loo)).metrics)


def test_constant_scorer_gets_chance_level(loo):
    def constant(users, items):
        return np.zeros(items.shape if items is not None else (len(users), loo.n_items))

    result = Evaluator(loo, "test", "loo-sampled").evaluate(constant)
    # 100 candidates, ties broken at random: HR@10 = 0.1 in expectation (±0.03 over 943 users)
    assert result.metrics["HR@10"] == pytest.approx(0.10, abs=0.03)


def test_ties_never_favour_the_target(loo):
    # a scorer that puts the target level with every negative must not get HR@1 of 1
    def target_ties(users, items):
        return np.ones(items.shape)

    result = Evaluator(loo, "test", "loo-sampled", ks=(1, 10)).evaluate(target_ties)
    assert result.metrics["HR@1"] < 0.05


def test_oracle_gets_everything_right(loo):
    targets = dict(zip(loo.test.user, loo.test.item))

    def oracle(users, items):
        target = np.array([targets[u] for u in users])
        if items is None:
            scores = np.zeros((len(users), loo.n_items))
            scores[np.arange(len(users)), target] = 1
            return scores
        return (items == target[:, None]).astype(float)

    for protocol in ("loo-sampled", "loo-full"):
        result = evaluate(oracle, loo, protocol)
        assert result.metrics["HR@10"] == 1.0 and result.metrics["NDCG@10"] == pytest.approx(1.0)


def test_candidates_are_the_same_for_every_model_and_exclude_all_positives(loo):
    a = Evaluator(loo, "test", "loo-sampled", seed=0)
    b = Evaluator(loo, "test", "loo-sampled", seed=0)
    assert np.array_equal(a.candidates, b.candidates)
    assert (a.candidates[:, 0] == a.target_items).all()
    positives = loo.all_positives()
    dense = positives.toarray()
    assert not dense[a.users[:, None], a.candidates[:, 1:]].any()
    # the validation item of a user is never a sampled negative at test time
    val = dict(zip(loo.validation.user, loo.validation.item))
    assert not any(val[u] in row[1:] for u, row in zip(a.users, a.candidates))


def test_full_ranking_masks_train_and_validation_history(loo):
    evaluator = Evaluator(loo, "test", "loo-full")
    seen = evaluator.history
    val = dict(zip(loo.validation.user, loo.validation.item))
    assert all(seen[u, i] for u, i in val.items())
    # a scorer that loves every seen item still gets the same result as one that ignores them
    counts = loo.train.item_counts().astype(float)

    def pop_plus_seen(users, items):
        scores = np.tile(counts, (len(users), 1))
        return scores + 1e6 * seen[users].toarray()

    assert evaluator.evaluate(pop_plus_seen).metrics["HR@10"] == pytest.approx(evaluator.evaluate(popularity_scorer(loo)).metrics["HR@10"])


def test_batch_size_does_not_change_results(loo):
    scorer = popularity_scorer(loo)
    small = Evaluator(loo, "test", "loo-full", batch_size=37).evaluate(scorer)
    large = Evaluator(loo, "test", "loo-full", batch_size=5000).evaluate(scorer)
    assert small.metrics["HR@10"] == large.metrics["HR@10"]


def test_heldout_users_protocol(ml100k):
    split = heldout_users(ml100k, n_heldout_users=60, seed=0)
    result = Evaluator(split, "test", "heldout-users").evaluate(fit_model(create_model("pop"), split.train, device="cpu"))
    for name in ("Recall@20", "Recall@50", "NDCG@100"):
        assert 0 < result.metrics[name] < 1
    assert len(result.users) == 60


def test_ratings_protocol_with_a_mean_predictor(ml100k):
    split = ratio_split(ml100k, seed=0)
    mean = split.train.rating.mean()
    result = Evaluator(split, "test", "ratings").evaluate(lambda users, items: np.full(items.shape, mean))
    assert result.metrics["RMSE"] == pytest.approx(np.sqrt(np.mean((split.test.rating - mean) ** 2)))
    assert 1.0 < result.metrics["RMSE"] < 1.3
    lo, hi = result.intervals["RMSE"]
    assert lo < result.metrics["RMSE"] < hi


def test_protocol_and_split_must_match(loo):
    with pytest.raises(ModelError, match="needs a heldout-users split"):
        Evaluator(loo, "test", "heldout-users")


def test_paired_comparison_prefers_the_better_scorer(loo):
    evaluator = Evaluator(loo, "test", "loo-sampled")
    pop = evaluator.evaluate(popularity_scorer(loo))
    rng = np.random.default_rng(0)
    noise = evaluator.evaluate(lambda users, items: rng.random(items.shape))
    comparison = paired_comparison(pop, noise, "HR@10")
    assert comparison["difference"] > 0.2
    assert comparison["interval"][0] > 0
    assert comparison["test"] == "exact McNemar" and comparison["p_value"] < 1e-6
    assert comparison["n_users"] == 943
    assert paired_difference_is_significant(comparison)
    assert paired_comparison(pop, noise, "NDCG@10")["test"] == "paired t-test"


def _per_user_result(values: list[float], metric: str) -> EvaluationResult:
    values = np.asarray(values, dtype=np.float64)
    return EvaluationResult("loo-sampled", "test", np.arange(len(values)), {metric: values}, {metric: float(values.mean())}, {})


def test_binary_metrics_get_the_exact_mcnemar_test_and_continuous_ones_the_t_test():
    # 40 users: a hits where b misses for 9, b where a misses for 1, 30 agree → McNemar: Binomial(10, 1/2),
    # two-sided p = 2 · P(X ≥ 9) = 2 · 11 / 1024.
    a = _per_user_result([1] * 9 + [0] + [1] * 15 + [0] * 15, "HR@10")
    b = _per_user_result([0] * 9 + [1] + [1] * 15 + [0] * 15, "HR@10")
    result = paired_comparison(a, b, "HR@10")
    assert result["test"] == "exact McNemar" and "p_value_t" not in result
    assert result["p_value"] == pytest.approx(22 / 1024)
    assert (result["a_better"], result["b_better"], result["ties"]) == (9, 1, 30)
    # no discordant user: nothing to test
    assert paired_comparison(a, a, "HR@10")["p_value"] == 1.0
    continuous = paired_comparison(
        _per_user_result(np.linspace(0.1, 0.9, 40), "NDCG@10"), _per_user_result(np.linspace(0.0, 0.8, 40) ** 2, "NDCG@10"), "NDCG@10"
    )
    assert continuous["test"] == "paired t-test" and continuous["p_value"] == continuous["p_value_t"] and "p_value_wilcoxon" in continuous


def test_bootstrap_interval_covers_the_mean():
    values = np.random.default_rng(1).random(500)
    lo, hi = bootstrap_interval(values, seed=0)
    assert lo < values.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 * values.std() / np.sqrt(500), rel=0.2)


def test_result_roundtrips_through_json(loo):
    result = Evaluator(loo, "test", "loo-sampled").evaluate(popularity_scorer(loo))
    from recsys_core.evaluation import EvaluationResult

    again = EvaluationResult.from_json(result.to_json(per_user=True))
    assert again.metrics == result.metrics
    assert np.array_equal(again.per_user["HR@10"], result.per_user["HR@10"])


def test_tiny_hand_made_full_ranking():
    # 3 users × 5 items; user 0's latest item is 4
    frame = pd.DataFrame(
        {"user": [0, 0, 0, 1, 1, 1, 2, 2, 2], "item": [0, 1, 4, 0, 2, 3, 1, 2, 3], "timestamp": [1, 2, 9, 1, 2, 3, 1, 2, 3]}
    )
    split = leave_one_out(Interactions.from_frame(frame, timestamp_col="timestamp"))
    fixed = np.array([5.0, 4.0, 3.0, 2.0, 1.0])  # item 0 best … item 4 worst
    result = Evaluator(split, "test", "loo-full", ks=(1, 2)).evaluate(lambda users, items: np.tile(fixed, (len(users), 1)))
    # user 0: history {0, 1} masked; candidates 2, 3, 4 in that order → target 4 at rank 3
    assert result.per_user["rank"][0] == 2
    assert result.per_user["HR@2"][0] == 0


@pytest.mark.parametrize("protocol", ["loo-sampled", "loo-full"])
def test_leave_one_out_recall_precision_and_map_for_one_held_out_item(loo, protocol):
    result = Evaluator(loo, "test", protocol).evaluate(popularity_scorer(loo))
    per_user, rank = result.per_user, result.per_user["rank"]
    # One held-out item per user: found or not in the top 10, one relevant item among 10, 1/rank cut at 10.
    np.testing.assert_array_equal(per_user["Recall@10"], per_user["HR@10"])
    np.testing.assert_allclose(per_user["Precision@10"], per_user["HR@10"] / 10)
    np.testing.assert_allclose(per_user["MAP@10"], np.where(rank < 10, 1.0 / (rank + 1), 0.0))
    assert 0 < result.metrics["MAP@10"] < result.metrics["MRR"] and "MAP@10" in result.intervals


def test_paired_comparison_of_ratings_pairs_every_rating(ml100k):
    split = ratio_split(ml100k, seed=0)
    evaluator = Evaluator(split, "test", "ratings")
    mean = split.train.rating.mean()
    a = evaluator.evaluate(lambda users, items: np.full(items.shape, mean))
    b = evaluator.evaluate(lambda users, items: np.full(items.shape, 3.0))
    comparison = paired_comparison(a, b, "MAE")
    assert comparison["n_users"] == len(split.test)  # every rating is a unit, not only each user's first
    assert comparison["difference"] == pytest.approx(a.metrics["MAE"] - b.metrics["MAE"])


def test_full_ranking_constant_scorer_is_chance_level_and_top_lists_are_not_the_lowest_ids(loo):
    def constant(users, items):
        return np.zeros(items.shape if items is not None else (len(users), loo.n_items), dtype=np.float32)

    result = Evaluator(loo, "test", "loo-full").evaluate(constant)
    # each user ranks the target among ~1,580 unseen items: expected HR@10 ≈ 10 / 1,580
    unseen = loo.n_items - np.diff(loo.history("test").to_csr().indptr)[result.users]
    assert result.metrics["HR@10"] == pytest.approx(np.mean(np.minimum(10 / unseen, 1)), abs=0.01)
    assert result.per_user["rank"].mean() == pytest.approx(np.mean((unseen - 1) / 2), rel=0.1)
    assert result.metrics["Coverage@10"] < 0.05  # one fixed item order: almost the same list for everyone


def test_rank_counts_better_candidates_and_a_random_share_of_ties():
    from recsys_core.evaluation import _ranks_with_random_ties

    scores = np.array([[3.0, 1.0, 1.0, 1.0, -np.inf], [3.0, 1.0, 1.0, 1.0, -np.inf], [0.0, 0.0, 0.0, 0.0, -np.inf]])
    target = np.array([1.0, 1.0, -np.inf])
    # one better candidate, three tied: rank 1 + floor(u * 4); a −∞ target after all finite ones, tied with the −∞ one
    assert _ranks_with_random_ties(scores, target, np.array([0.0, 0.99, 0.5])).tolist() == [1, 4, 5]
    # a −∞ target ties with the other −∞ candidates, minus the cells excluded from ranking
    assert _ranks_with_random_ties(scores[2:], target[2:], np.array([0.99]), excluded=np.array([1])).tolist() == [4]
    draws = np.random.default_rng(0).random(4000)
    ranks = _ranks_with_random_ties(np.repeat(scores[:1], 4000, axis=0), np.ones(4000), draws)
    assert set(np.unique(ranks)) == {1, 2, 3, 4} and ranks.mean() == pytest.approx(2.5, abs=0.1)


def test_nan_scores_rank_last_and_the_models_array_is_not_modified(loo):
    shared = np.ones(loo.n_items, dtype=np.float32)

    def cached(users, items):
        out = np.broadcast_to(shared, (len(users), loo.n_items)) if items is None else np.full(items.shape, np.nan)
        return out

    full = Evaluator(loo, "test", "loo-full").evaluate(cached)
    assert (shared == 1).all()
    unseen = loo.n_items - np.diff(loo.history("test").to_csr().indptr)[full.users]
    assert full.metrics["HR@10"] == pytest.approx(np.mean(np.minimum(10 / unseen, 1)), abs=0.01)
    result = Evaluator(loo, "test", "loo-sampled").evaluate(cached)
    assert result.metrics["HR@10"] == pytest.approx(0.10, abs=0.03)


# ---------------------------------------------------------------- speed-ups that must not change a number
def test_intervals_of_several_columns_are_each_columns_own():
    """Drawing the resampled users once for every metric gives each metric exactly its own interval."""
    from recsys_core.evaluation import bootstrap_intervals

    def resampled_alone(values, n_resamples, seed):  # the interval as it was computed, one column at a time
        rng, n = np.random.default_rng(seed), len(values)
        chunk = max(1, int(2e7 // n))
        means = [values[rng.integers(0, n, size=(min(chunk, n_resamples - s), n))].mean(axis=1) for s in range(0, n_resamples, chunk)]
        joined, tail = np.concatenate(means), (1 - 0.95) / 2 * 100
        return (float(np.percentile(joined, tail)), float(np.percentile(joined, 100 - tail)))

    rng = np.random.default_rng(3)
    columns = {"hits": (rng.random(5000) < 0.3).astype(float), "ndcg": rng.random(5000), "mrr": 1 / (1 + rng.integers(0, 99, 5000))}
    together = bootstrap_intervals(columns, n_resamples=300, seed=5)
    for name, values in columns.items():
        assert together[name] == bootstrap_interval(values, n_resamples=300, seed=5) == resampled_alone(values, 300, 5)
    big = (rng.random(40_000) < 0.1).astype(float)  # several chunks of resamples, a 0/1 column
    assert bootstrap_interval(big, n_resamples=1200, seed=1) == resampled_alone(big, 1200, 1)
    with pytest.raises(ValueError):
        bootstrap_intervals({"a": np.ones(3), "b": np.ones(4)})


def test_top_k_is_the_partition_in_priority_order_with_and_without_ties():
    """The fast top-K gives, row for row, what the partition over the priority order gives: rows whose
    k + 1 best scores are distinct by a partial sort, rows with ties (popularity counts, a constant
    scorer, −∞ for known items) by the partition itself."""
    from recsys_core.evaluation import _top_k, _top_k_partition

    rng = np.random.default_rng(0)
    n_items = 500
    distinct = rng.standard_normal((64, n_items)).astype(np.float32)
    counts = rng.integers(0, 40, (64, n_items)).astype(np.float32)  # heavy ties, as popularity has
    counts[rng.integers(0, 64, 3000), rng.integers(0, n_items, 3000)] = -np.inf
    constant = np.zeros((8, n_items))
    mixed = np.vstack([distinct[:32], counts[:32]])
    priority = rng.permutation(n_items)
    for scores in (distinct, counts, constant, mixed, distinct.astype(np.float64)):
        for k in (1, 10, 20, n_items):
            for order in (priority, None):
                assert np.array_equal(_top_k(scores, k, order), _top_k_partition(scores, min(k, n_items), order))


def test_score_blocks_are_private_row_major_copies_reused_in_place():
    from recsys_core.evaluation import _writable_scores

    row = np.array([3.0, np.nan, 1.0], dtype=np.float32)
    block = _writable_scores(np.broadcast_to(row, (4, 3)))
    assert block.flags.c_contiguous and block.flags.writeable and block.dtype == np.float32
    assert np.array_equal(block, np.tile([3.0, -np.inf, 1.0], (4, 1)))
    again = _writable_scores(np.broadcast_to(row * 2, (2, 3)), reuse=block)
    assert np.shares_memory(again, block) and np.array_equal(again, np.tile([6.0, -np.inf, 2.0], (2, 1)))
    wider = _writable_scores(np.zeros((2, 5)), reuse=again)  # another shape or dtype: a fresh block
    assert not np.shares_memory(wider, block) and wider.dtype == np.float64


def test_an_evaluator_shared_by_models_passes_time_order_only_to_the_model_that_reads_it():
    """An Evaluator may rank several models: the histories in time order it builds for a sequence model
    are not handed to (nor reported for) a model evaluated after it that does not read order."""
    from model_contract import checkerboard

    split = leave_one_out(checkerboard(), seed=0)
    evaluator = Evaluator(split, "test", "loo-full", seed=0)
    received = []

    class OrderReader:
        uses_timestamps = True

        def score(self, users, items, history=None, sequences=None):
            received.append(sequences)
            return np.zeros((len(users), split.n_items), dtype=np.float32)

        def score_histories(self, rows, items=None, sequences=None):
            raise AssertionError("leave-one-out scores known users")

    class OrderBlind(OrderReader):
        uses_timestamps = False

    reader = evaluator.evaluate(OrderReader())
    blind = evaluator.evaluate(OrderBlind())
    assert received[0] is not None and received[-1] is None
    assert "history_order" in reader.info and "history_order" not in blind.info
