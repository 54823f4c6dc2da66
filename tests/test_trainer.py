"""The training loop's seams: the fit context, early stopping, the returned history, stages in progress."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_contract import checkerboard

from recsys_core.evaluation import Evaluator
from recsys_core.fit_context import FitContext, TrainingEvent
from recsys_core.models import create_model
from recsys_core.splits import leave_one_out
from recsys_core.trainer import EarlyStopping, Trainer

SMALL_NEUMF = {"embedding_size": 4, "layers": (8, 4), "batch_size": 64}


def small_validation():
    """The checkerboard's leave-one-out split and a validation evaluator that fits its 24 items."""
    split = leave_one_out(checkerboard(), seed=0)
    return split, Evaluator(split, "validation", "loo-sampled", n_negatives=5, ks=(10,))


def test_early_stopping_takes_its_direction_from_the_metric():
    model = create_model("pop")
    Trainer(device="cpu", seed=0).fit(model, checkerboard())
    higher = EarlyStopping.for_metric("NDCG@10", patience=2)
    assert [higher.update(e, {"NDCG@10": v}, model) for e, v in enumerate([0.1, 0.3, 0.2, 0.25], 1)] == [True, True, False, False]
    assert higher.best_epoch == 2 and higher.best_metrics == {"NDCG@10": 0.3} and higher.should_stop
    lower = EarlyStopping.for_metric("RMSE", patience=0)
    assert [lower.update(e, {"RMSE": v}, model) for e, v in enumerate([1.2, 0.9, 1.0], 1)] == [True, True, False]
    assert lower.best_epoch == 2 and not lower.should_stop  # patience 0: never stops early


def test_early_stopping_restores_the_best_epochs_tensors():
    model = create_model("gmf", embedding_size=4, epochs=1)
    Trainer(device="cpu", seed=0).fit(model, checkerboard())
    stopping = EarlyStopping.for_metric("NDCG@10", patience=1)
    stopping.update(1, {"NDCG@10": 0.5}, model)
    best = {k: v.clone() for k, v in model._state().items()}
    with torch.no_grad():
        model.network.output.weight.add_(1.0)
    stopping.update(2, {"NDCG@10": 0.4}, model)
    stopping.restore_best(model)
    assert all(torch.equal(best[k], v) for k, v in model._state().items())


def test_the_history_is_returned_and_the_trainer_sets_nothing_undeclared_on_the_model():
    split, validation = small_validation()
    model = create_model("gmf", embedding_size=4, epochs=3, patience=0)
    history = Trainer(device="cpu", seed=0).fit(model, split.train, validation=validation)
    assert history.epochs_run == 3 and history.best_epoch in (1, 2, 3) and "NDCG@10" in history.validation
    for name in ("training_history", "history", "on_batch", "validation_evaluator"):
        assert not hasattr(model, name), name


def test_models_receive_one_context_with_the_seeded_generator():
    seen: list[FitContext] = []

    class Spy(type(create_model("gmf"))):
        def train_epoch(self, context, epoch):
            seen.append(context)
            return super().train_epoch(context, epoch)

    model = Spy(embedding_size=4, epochs=2)
    Trainer(device="cpu", seed=5, mixed_precision=False).fit(model, checkerboard())
    assert len(seen) == 2 and seen[0] is seen[1]
    context = seen[0]
    assert context.seed == 5 and context.device == torch.device("cpu") and context.epochs == 2 and context.evaluator is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.seed = 1


def test_cancelling_stops_inside_a_nested_fit():
    from recsys_core.errors import TrainingCancelled

    batches = []

    def cancel():
        return len(batches) >= 3

    with pytest.raises(TrainingCancelled):
        Trainer(device="cpu", seed=0, epochs=2, cancel=cancel).fit(
            create_model("neumf", **SMALL_NEUMF), checkerboard(), callback=lambda e: batches.append(e) if e.kind == "batch" else None
        )
    assert {e.stage for e in batches} == {"pretraining GMF"}


def test_neumf_progress_names_its_three_stages_in_order_and_never_goes_back():
    events: list[TrainingEvent] = []
    split, validation = small_validation()
    model = create_model("neumf", **SMALL_NEUMF, epochs=2, patience=0)
    Trainer(device="cpu", seed=0).fit(model, split.train, validation=validation, callback=events.append)
    stages = [e.stage for e in events if e.kind == "batch"]
    assert list(dict.fromkeys(stages)) == ["pretraining GMF", "pretraining MLP", "fine-tuning"]
    batches = [e for e in events if e.kind == "batch"]
    assert all(1 <= e.epoch <= e.epochs == 2 for e in batches)  # epoch k of n within the stage
    assert {e.stage_count for e in events} == {3} and all(e.total_epochs == 6 for e in events)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    first_mlp = next(e for e in batches if e.stage == "pretraining MLP")
    assert 0.3 < first_mlp.fraction < 0.4  # the bar moved during GMF's pretraining: a third of the epochs are done
    assert np.all(np.diff([e.elapsed for e in events]) >= 0)
    # the nested fits' epoch events stay inside: epoch events (curves, pruning) are the fine-tuning's only
    assert [e.epoch for e in events if e.kind == "epoch"] == [1, 2] and {e.stage for e in events if e.kind == "epoch"} == {"fine-tuning"}


def test_a_fit_without_stages_reports_one_training_stage():
    events: list[TrainingEvent] = []
    Trainer(device="cpu", seed=0).fit(create_model("gmf", embedding_size=4, epochs=2), checkerboard(), callback=events.append)
    assert {e.stage for e in events} == {"training"} and {e.stage_count for e in events} == {1}
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_the_train_pages_progress_line_shows_the_stage_elapsed_time_and_time_left():
    from webapp.train_ui import describe_event

    gmf = TrainingEvent(
        "batch", epoch=2, epochs=3, batch=5, batches=10, elapsed=30.0, stage="pretraining GMF", stage_count=3, total_epochs=9
    )
    line = describe_event(gmf)
    # 1.5 of 9 epochs done in 30 s: 150 s left
    assert line == "pretraining GMF (stage 1 of 3) · epoch 2/3 · batch 5/10 · 0:30 elapsed · about 2:30 left"
    mlp = TrainingEvent(
        "batch",
        epoch=1,
        epochs=3,
        batch=1,
        batches=10,
        elapsed=61.0,
        stage="pretraining MLP",
        stage_index=1,
        stage_count=3,
        stage_offset=3,
        total_epochs=9,
    )
    assert mlp.fraction > gmf.fraction and "pretraining MLP (stage 2 of 3)" in describe_event(mlp)
    plain = TrainingEvent("batch", epoch=1, epochs=4, batch=1, batches=100, elapsed=0.2, stage="training")
    assert describe_event(plain) == "epoch 1/4 · batch 1/100 · 0:00 elapsed · estimating time left…"
    refit = TrainingEvent(
        "batch",
        epoch=1,
        epochs=2,
        batch=1,
        batches=2,
        elapsed=10.0,
        phase="refit",
        stage="fine-tuning",
        stage_index=2,
        stage_count=3,
        stage_offset=4,
        total_epochs=6,
    )
    assert describe_event(refit).startswith("refit on train + validation · fine-tuning (stage 3 of 3) · epoch 1/2")


@pytest.mark.slow
def test_compile_network_trains_the_same_model_through_torch_compile(tmp_path):
    """``--compile``: the network's forward runs compiled (inductor), the fit matches an eager one
    (AutoRec: no dropout, whose random masks differ under compile), and the saved model (plain
    state_dict keys) loads into an uncompiled network."""
    from recsys_core.runs import load_model, save_model

    data = checkerboard(ratings=True)
    settings = {"epochs": 2, "batch_size": 8, "hidden": 16}
    eager = Trainer(device="cpu", seed=0).fit(create_model("autorec", **settings), data)
    compiled_model = create_model("autorec", **settings)
    compiled = Trainer(device="cpu", seed=0, compile_network=True).fit(compiled_model, data)
    assert compiled_model.network._compiled_call_impl is not None
    np.testing.assert_allclose([e["loss"] for e in compiled.epochs], [e["loss"] for e in eager.epochs], rtol=1e-4)
    save_model(compiled_model, tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.network._compiled_call_impl is None
    np.testing.assert_allclose(
        loaded.predict_ratings(np.arange(4), np.arange(4)), compiled_model.predict_ratings(np.arange(4), np.arange(4)), rtol=1e-4
    )
