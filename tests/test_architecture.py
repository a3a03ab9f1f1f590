"""The "adding a model family" example of docs/architecture.md, kept true.

``ItemMean`` below is a complete new recommender written only in this file: subclass
``FactorModel`` with the capability mixins it supports, declare parameters and tags,
fit through ``_prepare_fit`` and a ``Trainer``. With no edit anywhere else it gets
predict, recommend, evaluate, save/load, the ``factorkit models`` listing and the shared
check suite. The second half checks the layering rule that no module outside
``factorkit.models`` imports its private modules.
"""

import ast
import contextlib
import io
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import factorkit as fk
from factorkit._validation import LOOP_CONSTRAINTS, Interval
from factorkit.cli import main
from factorkit.models import FactorModel, RecommendMixin, Trainer, run_trainer
from factorkit.testing import estimator_checks


class ItemMean(RecommendMixin, FactorModel):
    """Predict ``mu + b_i``, each item's mean deviation shrunk towards zero.

    Parameters
    ----------
    shrinkage : float, default 5.0
        An item with ``n`` ratings keeps ``n / (n + shrinkage)`` of its mean deviation.
    epochs : int, default 1
        Passes (the solution is exact after one; more show the Trainer protocol).
    """

    _tags: ClassVar[dict[str, Any]] = {"iterative": True, "cli_name": "item-mean"}
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "shrinkage": Interval(float, 0, None),
        "epochs": Interval(int, 1, None),
        **LOOP_CONSTRAINTS,
    }

    def __init__(
        self,
        shrinkage: float = 5.0,
        epochs: int = 1,
        progress: bool = False,
        callbacks: Any = None,
        early_stopping: Any = None,
    ) -> None:
        self.shrinkage = shrinkage
        self.epochs = epochs
        self.progress = progress
        self.callbacks = callbacks
        self.early_stopping = early_stopping

    def fit(self, train: fk.Interactions) -> "ItemMean":
        data = self._prepare_fit(train)  # vocabularies, seen items, rating scale
        self.global_mean_ = float(data.values.astype(np.float64).mean())
        self.user_bias_ = np.zeros(data.n_users)
        self.item_bias_ = np.zeros(data.n_items)
        self.user_factors_ = np.zeros((data.n_users, 0), np.float32)
        self.item_factors_ = np.zeros((data.n_items, 0), np.float32)
        self.history_ = run_trainer(_ItemMeanTrainer(self, data), self.epochs)
        return self


class _ItemMeanTrainer(Trainer):
    state_names = ("item_bias_",)
    diverge_hint = "shrinkage"

    def __init__(self, model: ItemMean, data: fk.Interactions) -> None:
        super().__init__(model)
        self.items, self.values, self.n_items = data.item_index, data.values, data.n_items

    def epoch(self, epoch: int) -> float:
        m = self.model
        dev = self.values - m.global_mean_
        sums = np.bincount(self.items, weights=dev, minlength=self.n_items)
        counts = np.bincount(self.items, minlength=self.n_items)
        m.item_bias_ = sums / (counts + float(m.shrinkage))
        return float(np.mean((dev - m.item_bias_[self.items]) ** 2))


@pytest.fixture(scope="module")
def split():
    data = fk.datasets.load_movielens_small()
    return fk.split.random(data, test_size=0.2, random_state=0)


def test_new_family_recommends_and_evaluates(split):
    train, test = split
    model = ItemMean().fit(train)
    user = train.user_map.ids[0]
    items, scores = model.recommend(user, k=5)
    assert len(items) == 5 and (np.diff(scores) <= 0).all()
    seen, _ = train.user_items(user)
    assert not set(items.tolist()) & set(seen.tolist())
    result = fk.evaluate(model, test, ["rmse", "ndcg@10"], train=train)
    baseline = fk.evaluate(fk.BaselineOnly().fit(train), test, ["rmse"])["rmse"]
    assert baseline < result["rmse"] < 1.0  # item means alone: worse than user + item biases
    assert list(model.history_["epoch"]) == [1]


def test_new_family_saves_and_loads(split, tmp_path):
    train, test = split
    model = ItemMean(shrinkage=2.0).fit(train)
    model.save(tmp_path / "item_mean.fk")
    loaded = fk.load(tmp_path / "item_mean.fk")
    assert isinstance(loaded, ItemMean) and loaded.shrinkage == 2.0
    users, items = test.user_map.ids[test.user_index][:50], test.item_map.ids[test.item_index][:50]
    np.testing.assert_array_equal(
        loaded.predict(users, items, unknown="nan"), model.predict(users, items, unknown="nan")
    )


def test_new_family_is_listed_by_the_cli():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["models"]) == 0
    line = next(row for row in out.getvalue().splitlines() if "ItemMean" in row)
    assert "item-mean" in line and "recommend" in line and "similar" not in line
    tags = fk.get_tags(ItemMean)
    assert tags.can_recommend and not tags.can_fold_in and not tags.can_partial_fit
    assert not hasattr(ItemMean(), "similar_items") and not hasattr(ItemMean(), "fold_in")


@pytest.mark.parametrize(
    "check",
    estimator_checks(ItemMean(), skip=("check_checkerboard",)),  # no personalisation
    ids=lambda c: c.name,
)
def test_new_family_passes_the_check_suite(check):
    check()


# ---------------------------------------------------------------------- layering
SRC = Path(fk.__file__).parent


def _private_model_imports(path: Path) -> list[str]:
    """``factorkit.models._x`` imports in one module (absolute or ``from ... import _x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:  # from x import _y too
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            names = [names[0]] if names[0].startswith("factorkit.models._") else names
        else:
            continue
        found += [n for n in names if n.startswith("factorkit.models._")]
    return found


def test_no_module_outside_models_imports_its_private_modules():
    offenders = {
        str(path.relative_to(SRC)): names
        for path in sorted(SRC.rglob("*.py"))
        if "models" not in path.relative_to(SRC).parts[:1]
        and (names := _private_model_imports(path))
    }
    assert offenders == {}


def test_the_layering_check_catches_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from factorkit.models._factor import FactorModel\nimport os\n"
        "from factorkit.models import _training, BPR\nimport factorkit.models._init\n"
    )
    assert _private_model_imports(bad) == [
        "factorkit.models._factor",
        "factorkit.models._training",
        "factorkit.models._init",
    ]
