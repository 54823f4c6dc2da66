from model_contract import ModelContract


class TestPopularity(ModelContract):
    model_name = "pop"
    # Popularity ignores the user: on a checkerboard every item is equally popular, so it can only
    # be checked for the interface, not for finding the held-out item.
    min_accuracy = 0.0


class TestItemKNN(ModelContract):
    model_name = "itemknn"
    overrides = {"neighbours": 10, "shrinkage": 0.0}


class TestEASE(ModelContract):
    model_name = "ease"
    overrides = {"l2": 10.0}


def test_popularity_recommends_the_most_popular_unseen_items():
    import numpy as np
    import pandas as pd

    from recsys_core.interactions import Interactions
    from recsys_core.models import create_model

    # item 2 is seen by 3 users, item 1 by 2, item 0 by 1; user 0 has seen item 2
    frame = pd.DataFrame({"user": [0, 1, 2, 1, 2, 2, 3], "item": [2, 2, 2, 1, 1, 0, 3]})
    model = create_model("pop").fit(Interactions.from_frame(frame), device="cpu")
    items, scores = model.recommend(np.array([0]), k=3)
    assert items[0][0] == 1 and set(items[0][1:].tolist()) == {0, 3}  # 0 and 3 tie on one user each
    assert scores[0].tolist() == [2.0, 1.0, 1.0]
