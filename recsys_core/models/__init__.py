"""The model zoo: one module per family, looked up by the names the CLI and the app use."""

from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import TYPE_CHECKING

from ..errors import ModelError

if TYPE_CHECKING:
    from .base import Recommender

# name -> "module:Class", imported on first use so the app starts without loading every family.
_REGISTRY = {
    "pop": "baselines:Popularity",
    "itemknn": "baselines:ItemKNN",
    "bpr": "mf:BPR",
    "gmf": "ncf:GMF",
    "mlp": "ncf:MLP",
    "neumf": "ncf:NeuMF",
    "autorec": "rating_autoencoders:AutoRec",
    "deeprec": "rating_autoencoders:DeepRec",
    "cdae": "cdae:CDAE",
    "multvae": "vae:MultVAE",
    "multdae": "vae:MultDAE",
    "svae": "svae:SVAE",
    "ease": "ease:EASE",
    "ials": "als:IALS",
}

MODEL_NAMES = tuple(_REGISTRY)


def model_class(name: str) -> type[Recommender]:
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}", "Models: " + ", ".join(MODEL_NAMES))
    module_name, class_name = _REGISTRY[name].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)


def model_title(name: str) -> str:
    """How the app and reports name a model ("Mult-VAE"): its class's ``title``; an unregistered name
    (a run of a model since removed) as it is. Naming a run must not load torch on the app's first page,
    so the title is read from the class body in its module's source, not by importing the module."""
    if name not in _REGISTRY:
        return name
    return _declared_title(name)


@functools.cache
def _declared_title(name: str) -> str:
    import ast
    from pathlib import Path

    module_name, class_name = _REGISTRY[name].split(":")
    try:
        source = Path(__file__).with_name(f"{module_name}.py").read_text(encoding="utf-8")
    except OSError:  # no source at hand (an installed .pyc): import the model
        return model_class(name).title or name
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for statement in node.body:
                match statement:
                    case ast.Assign(targets=[ast.Name(id="title")], value=ast.Constant(value=str(title))):
                        return title
    return model_class(name).title or name


def create_model(name: str, **overrides) -> Recommender:
    """A new, unfitted model with its default config and ``overrides`` applied."""
    return model_class(name)(**overrides)


def config_fields(name: str) -> list[dict]:
    """Each setting of a model's config: name, default, type and its documentation line."""
    cls = model_class(name)
    docs = _field_docs(cls.Config)
    out = []
    for f in dataclasses.fields(cls.Config):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        out.append({"name": f.name, "default": default, "type": type(default).__name__, "doc": docs.get(f.name, "")})
    return out


def _field_docs(config_cls: type) -> dict[str, str]:
    """Attribute docstrings (the string literal under each field) of a config and its bases."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(config_cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, following in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                docs[node.target.id] = str(following.value.value).strip()  # type: ignore[union-attr]
    return docs


_BASE_NAMES = ("ModelConfig", "Recommender", "TorchRecommender", "TrainingConfig")


def __getattr__(name: str):
    # The base classes need torch; importing them lazily keeps `--help` and the app's first page fast.
    if name in _BASE_NAMES:
        from . import base

        return getattr(base, name)
    raise AttributeError(name)


__all__ = ["MODEL_NAMES", *_BASE_NAMES, "config_fields", "create_model", "model_class", "model_title"]
