"""Two browser users training from the Train page at once both finish; the server queue holds the second."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recsys_core.datasets import fetch
from recsys_core.runs import list_runs

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.mark.parametrize("capacity", [2, 1])
def test_two_browser_users_training_at_once_both_finish(capacity, monkeypatch, finish_training):
    from recsys_core import jobs

    fetch("ml-100k", source=REPO.parent / "shared" / "data" / "ml-100k")
    monkeypatch.setattr(jobs, "TRAINING_SLOTS", jobs.TrainingSlots(capacity))
    users = [AppTest.from_file(str(REPO / "app_pages" / "2_Train.py"), default_timeout=240) for _ in range(2)]
    for user, model in zip(users, ("pop", "itemknn"), strict=True):
        user.run()
        user.multiselect(key="train_models").set_value([model]).run()
    errors: list[BaseException] = []

    def click(user: AppTest) -> None:
        try:
            user.button(key="train_start").click().run()
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=click, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors
    for user in users:
        finish_training(user)
        assert not user.exception, [e.message for e in user.exception]
        assert not user.error, [e.value for e in user.error]
    assert sorted(r.model.name for r in list_runs()) == ["itemknn", "pop"]
    assert jobs.TRAINING_SLOTS.running() == 0 and jobs.TRAINING_SLOTS.queued() == 0


def test_the_train_page_names_a_model_that_would_not_fit_in_memory(ml100k, monkeypatch):
    from recsys_core import limits
    from webapp.train_ui import model_catalogue, plan_problems

    catalogue = model_catalogue()
    assert plan_problems(["ease", "pop"], "loo-sampled", ml100k, catalogue, {}) == []
    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": 100 << 20)
    problems = plan_problems(["ease", "pop"], "loo-sampled", ml100k, catalogue, {})
    assert (
        len(problems) == 1
        and problems[0].startswith("ease: ease on 943 users × 1,682 items needs about")
        and "0.1 GiB of memory is available" in problems[0]
        and "k-core" in problems[0]
    )
