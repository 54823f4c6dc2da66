"""Facts about each model live on the model (its class and its config's fields), and say what the
name tables they replaced said: the same bounds, search spaces, memory estimates and titles."""

from __future__ import annotations

import dataclasses

import pytest

from recsys_core import limits
from recsys_core.models import MODEL_NAMES, model_class

# The name table the config fields' bounds replaced (recsys_core.limits.SETTING_BOUNDS), and iALS's own
# BOUNDS that took precedence over it: every field of every model must keep exactly this range.
OLD_SETTING_BOUNDS = {
    "epochs": (1, 1000),
    "learning_rate": (1e-7, 1.0),
    "finetune_learning_rate": (1e-7, 1.0),
    "batch_size": (1, 65_536),
    "weight_decay": (0.0, 1e6),
    "patience": (0, 1000),
    "embedding_size": (1, 4096),
    "n_negatives": (0, 100),
    "layers": (1, 8192),
    "hidden": (1, 8192),
    "hidden_size": (1, 8192),
    "rnn_size": (1, 8192),
    "latent_size": (1, 8192),
    "alpha": (0.0, 1.0),
    "dropout": (0.0, 0.99),
    "corruption": (0.0, 0.99),
    "beta_cap": (0.0, 10.0),
    "total_anneal_steps": (1, 1e9),
    "next_k": (1, 100),
    "max_length": (1, 10_000),
    "neighbours": (1, 10_000),
    "shrinkage": (0.0, 1e6),
    "l2": (1e-6, 1e9),
    "l2_grid": (1e-6, 1e9),
}
OLD_OWN_BOUNDS = {"ials": {"alpha": (1e-3, 1e4), "regularization": (0.0, 1e6), "factors": (1, 4096)}}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_setting_keeps_its_range(name):
    config_type = model_class(name).Config
    for field in dataclasses.fields(config_type):
        expected = OLD_OWN_BOUNDS.get(name, {}).get(field.name, OLD_SETTING_BOUNDS.get(field.name))
        assert limits.setting_bounds(field.name, config_type) == expected, (name, field.name)


def test_a_subclass_that_changes_a_default_keeps_the_range():
    from recsys_core.models.vae import MultAutoencoderConfig, MultVAEConfig

    # MultVAEConfig redeclares layers only for its default; the range is its base's.
    assert "bounds" not in MultVAEConfig.__dataclass_fields__["layers"].metadata
    assert limits.setting_bounds("layers", MultVAEConfig) == limits.setting_bounds("layers", MultAutoencoderConfig) == (1, 8192)
    with pytest.raises(Exception, match="outside its range"):
        MultVAEConfig(layers=(600, 9000))
    assert limits.setting_bounds("no_such_setting", MultVAEConfig) is None


# The titles webapp/common.py's MODEL_TITLES gave before each class declared its own.
OLD_TITLES = {
    "pop": "Popularity", "itemknn": "Item-kNN", "bpr": "BPR", "gmf": "GMF", "mlp": "MLP", "neumf": "NeuMF", "autorec": "AutoRec",
    "deeprec": "DeepRec", "cdae": "CDAE", "multvae": "Mult-VAE", "multdae": "Mult-DAE", "svae": "SVAE", "ease": "EASE",
    "ials": "iALS",
}  # fmt: skip


def test_each_model_declares_its_title_and_the_lookup_reads_it_without_torch():
    import subprocess
    import sys

    from recsys_core.models import model_title

    assert set(MODEL_NAMES) == set(OLD_TITLES)
    for name in MODEL_NAMES:
        assert model_class(name).title == model_title(name) == OLD_TITLES[name], name
    assert model_title("a-model-since-removed") == "a-model-since-removed"
    code = (
        "import sys; from recsys_core.models import MODEL_NAMES, model_title; "
        "print([model_title(n) for n in MODEL_NAMES] and 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "naming a model imported torch"
