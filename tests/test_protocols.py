"""One typed object per evaluation protocol: the registry every layer reads."""

from __future__ import annotations

import argparse

import pytest

from recsys_core.errors import DataError, ModelError
from recsys_core.protocols import DEFAULT_PROTOCOL, PROTOCOL_NAMES, PROTOCOLS, get_protocol, validation_protocol_for


def _protocol_choices(parser: argparse.ArgumentParser, command: str) -> tuple:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    action = next(a for a in sub._actions if "--protocol" in a.option_strings)
    return tuple(action.choices), action.default


def test_the_registry_drives_the_cli_choices_and_the_train_page():
    from recsys_core.cli import build_parser
    from webapp.train_ui import PROTOCOL_HELP
    from webapp.tune_ui import TUNE_PROTOCOLS

    parser = build_parser()
    assert _protocol_choices(parser, "train") == (PROTOCOL_NAMES, DEFAULT_PROTOCOL)
    assert _protocol_choices(parser, "tune") == (PROTOCOL_NAMES, DEFAULT_PROTOCOL)
    assert _protocol_choices(parser, "evaluate") == (PROTOCOL_NAMES, None)  # default: the run's own
    assert PROTOCOL_HELP == {name: p.help for name, p in PROTOCOLS.items()} and tuple(TUNE_PROTOCOLS) == PROTOCOL_NAMES


@pytest.mark.parametrize(
    "name, split_kind, headline, validation, direction, companions, needs_ratings",
    [
        ("loo-sampled", "leave-one-out", "HR@10", "NDCG@10", "maximize", ("loo-sampled", "loo-full"), False),
        ("loo-full", "leave-one-out", "HR@10", "NDCG@10", "maximize", ("loo-full", "loo-sampled"), False),
        ("heldout-users", "heldout-users", "Recall@20", "NDCG@100", "maximize", ("heldout-users",), False),
        ("ratings", "ratio", "RMSE", "RMSE", "minimize", ("ratings",), True),
    ],
)
def test_each_protocols_facts(name, split_kind, headline, validation, direction, companions, needs_ratings):
    p = get_protocol(name)
    assert (p.name, p.split_kind, p.headline, p.validation_metric, p.validation_direction) == (
        name,
        split_kind,
        headline,
        validation,
        direction,
    )
    assert p.companions == companions and p.needs_ratings == needs_ratings and p.metrics[0] == headline
    assert p.lower_is_better == (direction == "minimize") and p.help
    # what the other layers derive from it
    from recsys_core.evaluation import HEADLINE
    from recsys_core.experiment import companion_protocols
    from recsys_core.splits import PROTOCOL_SPLITS
    from recsys_core.tuning import validation_metric

    assert HEADLINE[name] == headline and PROTOCOL_SPLITS[name] == split_kind
    assert companion_protocols(name) == list(companions) and validation_metric(name) == (validation, direction)


def test_only_sampled_leave_one_out_samples_negatives_and_validation_runs_it():
    assert [p.name for p in PROTOCOLS.values() if p.sampled_negatives] == ["loo-sampled"] and get_protocol(
        "loo-sampled"
    ).sampled_negatives == 99
    assert validation_protocol_for("leave-one-out").name == "loo-sampled"  # loo-full validates on sampled candidates
    assert validation_protocol_for("heldout-users").validation_ks == (10, 20, 50, 100)
    assert validation_protocol_for("ratio").name == "ratings"


def test_a_bad_protocol_name_gives_a_clear_error_with_the_choices():
    with pytest.raises(ModelError, match=r"unknown protocol 'loo'") as error:
        get_protocol("loo")
    assert error.value.hint == "Protocols: loo-sampled, loo-full, heldout-users, ratings"
    with pytest.raises(ModelError, match="no protocol evaluates a 'nonsense' split"):
        validation_protocol_for("nonsense")
    from recsys_core.experiment import run_experiment

    with pytest.raises(ModelError, match="unknown protocol 'loo'"):
        run_experiment(None, "pop", protocol="loo")  # refused before the data is read


def test_a_protocol_checks_the_models_and_data_it_can_evaluate():
    from recsys_core.models import model_class

    ratings, ranking = get_protocol("ratings"), get_protocol("loo-full")
    assert ratings.supports(model_class("autorec")) and not ratings.supports(model_class("ease"))
    assert all(ranking.supports(model_class(name)) for name in ("ease", "autorec", "neumf"))
    with pytest.raises(ModelError, match="ease ranks items and cannot be evaluated on ratings"):
        ratings.check(model_class("ease"), has_ratings=True)
    with pytest.raises(DataError, match="needs a rating column"):
        ratings.check(model_class("autorec"), has_ratings=False)
    ranking.check(model_class("ease"), has_ratings=False)  # no rating column needed
    assert "ease" in ratings.unsupported_models_message(["ease"]) and ranking.data_problem(has_ratings=False) is None


def test_the_train_pages_plan_reads_the_protocols_checks(ml100k):
    from webapp.train_ui import model_catalogue, plan_problems

    catalogue = model_catalogue()
    problems = plan_problems(["ease", "autorec"], "ratings", ml100k, catalogue, {})
    assert problems[0] == get_protocol("ratings").unsupported_models_message(["ease"])
    assert plan_problems(["ease"], "loo-sampled", ml100k, catalogue, {}) == []


def test_the_protocol_registry_is_light():
    import subprocess
    import sys

    code = "import sys, recsys_core.protocols; print('numpy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_which_protocol_judges_a_run_and_its_short_name_are_protocol_facts():
    judged = {name: (p.judged_on, get_protocol(p.judged_on).short) for name, p in PROTOCOLS.items()}
    assert judged == {
        "loo-sampled": ("loo-full", "full ranking"),  # the sampled metric never decides
        "loo-full": ("loo-full", "full ranking"),
        "heldout-users": ("heldout-users", "held-out users"),
        "ratings": ("ratings", "ratings"),
    }
    # A protocol is judged on one of its companions: the same test split.
    assert all(p.judged_on in p.companions for p in PROTOCOLS.values())


def test_metric_directions_come_from_the_protocols():
    from recsys_core.evaluation import LOWER_IS_BETTER as evaluation_lower
    from recsys_core.protocols import LOWER_IS_BETTER, lower_is_better

    assert LOWER_IS_BETTER == {"RMSE", "MAE", "squared_error"} and evaluation_lower is LOWER_IS_BETTER
    assert not any(lower_is_better(m) for p in PROTOCOLS.values() if not p.lower_is_better for m in p.metrics)
    assert get_protocol("ratings").paired_headline == "squared_error" and get_protocol("loo-full").paired_headline == "HR@10"


def test_the_reports_prose_reads_its_numbers_from_the_split_the_runs_recorded():
    ratings = get_protocol("ratings").describe({"kind": "ratio", "test_fraction": 0.1, "validation_fraction": 0.05})
    assert "10% of them for test, 5% for validation and the other 85% for training" in ratings and "90/10" not in ratings
    other = get_protocol("ratings").describe({"kind": "ratio", "test_fraction": 0.2, "validation_fraction": 0.1})
    assert "20% of them for test, 10% for validation and the other 70% for training" in other
    assert "%" not in get_protocol("ratings").describe({})  # an old run that recorded no fractions: no number guessed
    held = get_protocol("heldout-users").describe({"n_heldout_users": 94, "given_fraction": 0.75})
    assert "94 users are kept for validation and 94 other users for test" in held and "reads 75%" in held and "other 25%" in held
    assert "Recall@20 is the share of those found in the top 20" in held
    assert "ranked among 99 items" in get_protocol("loo-sampled").describe({}) and "sampling 99 negatives" in get_protocol("loo-full").describe({})
