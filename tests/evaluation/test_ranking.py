"""Ranking metrics: hand-worked cases, conventions, and an independent reference."""

import math
import warnings
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

import factorkit as fk
from factorkit.exceptions import DataWarning, InvalidParameterError, NotFittedError
from factorkit.models import FactorModel, RecommendMixin
from factorkit.models.popular import MostPopular

ALL = ["precision@{k}", "recall@{k}", "ndcg@{k}", "map@{k}", "mrr@{k}", "hit_rate@{k}"]


class _FixedScores(RecommendMixin, FactorModel):
    """A 'fitted' model with given factors and item scores (the leading underscore keeps
    it out of the model registry)."""

    _tags: ClassVar[dict] = {"feedback": "implicit"}

    def fit(self, train, user_factors=None, item_factors=None, item_scores=None):
        data = self._prepare_fit(train)
        n_u, n_i = data.n_users, data.n_items
        self.user_factors_ = np.zeros((n_u, 0), np.float32)
        self.item_factors_ = np.zeros((n_i, 0), np.float32)
        if user_factors is not None:
            self.user_factors_ = np.asarray(user_factors, np.float32)
            self.item_factors_ = np.asarray(item_factors, np.float32)
        self.user_bias_ = np.zeros(n_u)
        self.item_bias_ = np.zeros(n_i)
        if isinstance(item_scores, dict):  # raw item id -> score
            self.item_bias_ = np.array([float(item_scores[i]) for i in self.item_map_.ids])
        elif item_scores is not None:
            self.item_bias_ = np.asarray(item_scores, np.float64)
        self.global_mean_ = 0.0
        return self


def _inter(rows):
    users, items, values = zip(*rows, strict=True)
    return fk.Interactions.from_arrays(list(users), list(items), list(values))


# The hand-worked case. User "z" has seen every item, so the model knows items t, i1..i6;
# user "a" has seen only t. Scores: t 10, i1 6, i2 5, i3 4, i4 3, i5 2, i6 1, so a's
# ranking (t excluded) is i1 i2 i3 i4 i5 i6. a's test items: i2 (5.0), i4 (2.0) and
# "new" (4.0, unknown to the model: a miss that still counts as relevant).
SCORES = {"t": 10, "i1": 6, "i2": 5, "i3": 4, "i4": 3, "i5": 2, "i6": 1}
TRAIN = _inter([("a", "t", 1.0)] + [("z", i, 1.0) for i in SCORES])
TEST = _inter([("a", "i2", 5.0), ("a", "i4", 2.0), ("a", "new", 4.0)])


@pytest.fixture(scope="module")
def hand_model():
    return _FixedScores().fit(TRAIN, item_scores=SCORES)


def test_hand_worked_top_k(hand_model):
    # relevant R = {i2, i4, new}, n = 3; hits at ranks 2 (i2) and 4 (i4)
    got = fk.evaluate(hand_model, TEST, [m.format(k=3) for m in ALL] + [m.format(k=5) for m in ALL])
    l3, l4, l5 = 1 / math.log2(3), 1 / math.log2(4), 1 / math.log2(5)
    ideal3 = 1 + l3 + l4  # min(k, n) = 3 ideal hits for k = 3 and k = 5
    want = {
        # k = 3: one hit (rank 2)
        "precision@3": 1 / 3,
        "recall@3": 1 / 3,
        "ndcg@3": l3 / ideal3,  # 0.6309 / 2.1309 = 0.2961
        "map@3": (1 / 2) / 3,  # precision@2 at the one hit, over min(3, 3)
        "mrr@3": 1 / 2,
        "hit_rate@3": 1.0,
        # k = 5: two hits (ranks 2 and 4)
        "precision@5": 2 / 5,
        "recall@5": 2 / 3,
        "ndcg@5": (l3 + l5) / ideal3,  # 1.0616 / 2.1309 = 0.4982
        "map@5": (1 / 2 + 2 / 4) / 3,  # = 1/3
        "mrr@5": 1 / 2,
        "hit_rate@5": 1.0,
    }
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


def test_hand_worked_auc_and_coverage(hand_model):
    # candidates i1..i6; positives i2 (5), i4 (3), new (unknown: loses every pair);
    # negatives i1 (6), i3 (4), i5 (2), i6 (1).
    # i2 beats i3, i5, i6 (3); i4 beats i5, i6 (2); new beats none -> 5 / (3 * 4)
    got = fk.evaluate(hand_model, TEST, ["auc", "coverage@3", "coverage@10"])
    assert got["auc"] == pytest.approx(5 / 12)
    # a's top-3 is i1 i2 i3: 3 of the model's 7 items; top-10 holds all 6 candidates
    assert got["coverage@3"] == pytest.approx(3 / 7)
    assert got["coverage@10"] == pytest.approx(6 / 7)


def test_relevance_threshold(hand_model):
    # >= 4.0: R = {i2, new}, n = 2; i4 (2.0) becomes an ordinary non-relevant candidate
    got = fk.evaluate(hand_model, TEST, ["recall@3", "ndcg@3", "auc"], relevance_threshold=4.0)
    assert got["recall@3"] == pytest.approx(1 / 2)
    assert got["ndcg@3"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    # i2 (5) beats i3, i4, i5, i6 of the 5 negatives i1, i3, i4, i5, i6; new none
    assert got["auc"] == pytest.approx(4 / (2 * 5))


def test_ties_rank_by_model_position_and_count_half_in_auc():
    train = _inter([("a", "t", 1.0)] + [("z", i, 1.0) for i in ("p", "q", "r", "t")])
    model = _FixedScores().fit(train, item_scores={"p": 1, "q": 1, "r": 0, "t": 0})
    pos = model.item_map_.to_index(["p", "q"])
    first = "p" if pos[0] < pos[1] else "q"
    test = _inter([("a", first, 1.0)])
    # p and q tie at the top: the lower model position ranks first
    assert fk.evaluate(model, test, ["mrr@2"])["mrr@2"] == 1.0
    # AUC: the relevant item ties with one negative (0.5) and beats r (1) -> 1.5 / 2
    assert fk.evaluate(model, test, ["auc"])["auc"] == pytest.approx(0.75)


def test_train_items_are_excluded_and_train_argument(hand_model):
    # with train=, a has also seen i1, so the ranking starts at i2: a hit at rank 1
    train2 = _inter([("a", "t", 1.0), ("a", "i1", 1.0)])
    got = fk.evaluate(hand_model, TEST, ["precision@1", "mrr@5"], train=train2)
    assert got == {"precision@1": 1.0, "mrr@5": 1.0}
    # without it, the model's own training data: i1 is a candidate and ranks first
    assert fk.evaluate(hand_model, TEST, ["precision@1"])["precision@1"] == 0.0
    # a test item that is also a training item cannot be recommended: not relevant
    test_with_t = _inter(
        [*zip(["a"] * 4, ["i2", "i4", "new", "t"], [5.0, 2.0, 4.0, 3.0], strict=True)]
    )
    assert fk.evaluate(hand_model, test_with_t, ["recall@5"]) == {"recall@5": 2 / 3}


def test_unknown_items_are_misses(hand_model):
    only_new = _inter([("a", "new", 1.0), ("a", "new2", 1.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the user is known
        got = fk.evaluate(hand_model, only_new, ["recall@5", "ndcg@5", "hit_rate@5", "auc"])
    assert got == {"recall@5": 0.0, "ndcg@5": 0.0, "hit_rate@5": 0.0, "auc": 0.0}


def test_unknown_users_count_as_zero_with_warning(hand_model):
    test = _inter([("a", "i2", 1.0), ("stranger", "i1", 1.0), ("stranger", "new", 1.0)])
    with pytest.warns(DataWarning, match=r"1 of 2 evaluated test users are unknown to the model"):
        summary, frame = fk.evaluate(
            hand_model, test, ["recall@2", "hit_rate@2", "auc"], per_user=True
        )
    # a: i2 at rank 2 -> recall 1, hit 1; AUC: i2 beats i3..i6 of 5 negatives -> 4/5
    # stranger: no recommendations -> 0; AUC: known i1 ties with all 6 other items (0.5),
    # new loses (0) -> 0.5 / 2 = 0.25
    assert frame["user"].tolist() == ["a", "stranger"]
    assert frame["known"].tolist() == [True, False]
    assert frame["recall@2"].tolist() == [1.0, 0.0]
    assert frame["auc"].tolist() == pytest.approx([0.8, 0.25])
    assert summary == pytest.approx({"recall@2": 0.5, "hit_rate@2": 0.5, "auc": 0.525})


def test_users_without_relevant_items_are_skipped(hand_model):
    test = _inter([("a", "i2", 5.0), ("z", "i3", 2.0)])  # z: nothing >= 4; z saw i3 too
    summary, frame = fk.evaluate(
        hand_model, test, ["recall@3"], relevance_threshold=4.0, per_user=True
    )
    assert frame["user"].tolist() == ["a"]
    assert summary == {"recall@3": 1.0}
    assert frame["n_relevant"].tolist() == [1]


def test_no_relevant_items_at_all_warns_and_gives_nan(hand_model):
    with pytest.warns(DataWarning, match=r"no test user has a relevant item with value >= 9"):
        got = fk.evaluate(hand_model, TEST, ["ndcg@5", "coverage@5"], relevance_threshold=9)
    assert all(np.isnan(v) for v in got.values())


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("metrics", "match"),
    [
        (["ndcg"], r"ndcg needs a cut-off, e\.g\. 'ndcg@10' \(metric 'ndcg'\); available metrics"),
        (["ndcg@0"], r"the cut-off k of ndcg must be an int >= 1; got '0'"),
        (["recall@ten"], r"cut-off k of recall must be an int >= 1; got 'ten'"),
        (["recall@-1"], r"got '-1'"),
        (["foo@10"], r"unknown metric \(metric 'foo@10'\); available metrics: rmse, mae, "),
        (["auc@10"], r"auc takes no cut-off @k"),
        (["rmse@3"], r"rmse takes no cut-off @k"),
        ([3], r"metric names must be strings \(metric 3\)"),
        ([], r"metrics must name at least one metric"),
    ],
)
def test_bad_metric_names(hand_model, metrics, match):
    with pytest.raises(InvalidParameterError, match=match) as info:
        fk.evaluate(hand_model, TEST, metrics)
    assert "precision@k, recall@k, ndcg@k, map@k, mrr@k, hit_rate@k, auc, coverage@k" in str(
        info.value
    )


def test_metric_names_are_case_insensitive_and_deduplicated(hand_model):
    got = fk.evaluate(hand_model, TEST, ["NDCG@3", "ndcg@3", " Recall @ 3 "])
    assert list(got) == ["ndcg@3", "recall@3"]


def test_bad_arguments(hand_model):
    with pytest.raises(InvalidParameterError, match=r"relevance_threshold must be a finite"):
        fk.evaluate(hand_model, TEST, ["ndcg@3"], relevance_threshold="4")
    with pytest.raises(InvalidParameterError, match=r"got nan"):
        fk.evaluate(hand_model, TEST, ["ndcg@3"], relevance_threshold=float("nan"))
    with pytest.raises(InvalidParameterError, match=r"relevance_threshold applies to ranking"):
        fk.evaluate(hand_model, TEST, ["rmse"], relevance_threshold=4.0)
    with pytest.raises(fk.exceptions.DataError, match=r"train must be an Interactions"):
        fk.evaluate(hand_model, TEST, ["ndcg@3"], train=TEST.to_pandas())
    with pytest.raises(InvalidParameterError, match=r"evaluate: per_user must be a bool; got 'y'"):
        fk.evaluate(hand_model, TEST, ["ndcg@3"], per_user="y")
    with pytest.raises(NotFittedError, match=r"call fit\(train\) before evaluate"):
        fk.evaluate(MostPopular(), TEST, ["ndcg@3"])
    with pytest.raises(InvalidParameterError, match=r"ranking metrics need a fitted factorkit"):
        fk.evaluate(object(), TEST, ["ndcg@3"])


# ---------------------------------------------------------------------- reference


def _reference(model, test, ks, train=None, threshold=None):
    """Straight from the definitions: one user at a time, dense float32 scores."""
    item_ids = list(model.item_map_.ids)
    col = {i: c for c, i in enumerate(item_ids)}
    users = list(model.user_map_.ids)
    row = {u: r for r, u in enumerate(users)}
    scores_all = np.vstack([s for *_, s in model.score_blocks(np.arange(len(users)))])
    if train is None:
        seen = {
            users[u]: {item_ids[c] for c in model.seen_indices_[a:b]}
            for u, (a, b) in enumerate(
                zip(model.seen_indptr_[:-1], model.seen_indptr_[1:], strict=True)
            )
        }
    else:
        seen = train.to_pandas().groupby("user")["item"].agg(set).to_dict()
    rows, shown = [], {k: set() for k in ks}
    for user, group in test.to_pandas().groupby("user", sort=False):
        rel = group if threshold is None else group[group["rating"] >= threshold]
        user_seen = seen.get(user, set())
        relevant = set(rel["item"]) - user_seen
        if not relevant:
            continue
        n = len(relevant)
        out = {"user": user}
        if user not in row:
            for k in ks:
                for m in ALL:
                    out[m.format(k=k)] = 0.0
            n_known = sum(i in col for i in relevant)
            out["auc"] = 0.5 * n_known / n
            rows.append(out)
            continue
        s = scores_all[row[user]]
        is_cand = np.ones(len(item_ids), dtype=bool)
        is_cand[[col[i] for i in user_seen if i in col]] = False
        cand = np.flatnonzero(is_cand)
        ranked = cand[np.lexsort((cand, -s[cand]))]  # score descending, then position
        for k in ks:
            top = [item_ids[c] for c in ranked[:k]]
            shown[k].update(top)
            hits = [i in relevant for i in top] + [False] * (k - len(top))
            dcg = sum(1 / math.log2(j + 2) for j in range(k) if hits[j])
            idcg = sum(1 / math.log2(j + 2) for j in range(min(k, n)))
            ap = sum(sum(hits[: j + 1]) / (j + 1) for j in range(k) if hits[j]) / min(k, n)
            out[f"precision@{k}"] = sum(hits) / k
            out[f"recall@{k}"] = sum(hits) / n
            out[f"ndcg@{k}"] = dcg / idcg
            out[f"map@{k}"] = ap
            out[f"mrr@{k}"] = next((1 / (j + 1) for j in range(k) if hits[j]), 0.0)
            out[f"hit_rate@{k}"] = float(any(hits))
        pos = np.array([s[col[i]] for i in relevant if i in col], dtype=np.float64)
        is_neg = is_cand.copy()
        is_neg[[col[i] for i in relevant if i in col]] = False
        neg = s[is_neg].astype(np.float64)
        won = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        out["auc"] = won / (n * len(neg)) if len(neg) else np.nan
        rows.append(out)
    frame = pd.DataFrame(rows)
    summary = {c: frame[c].mean() for c in frame.columns if c != "user"}
    for k in ks:
        summary[f"coverage@{k}"] = len(shown[k]) / len(item_ids)
    return summary, frame


def _metrics(ks):
    return [m.format(k=k) for k in ks for m in ALL] + ["auc"] + [f"coverage@{k}" for k in ks]


def _compare(model, test, ks, **kwargs):
    want_summary, want = _reference(model, test, ks, kwargs.get("train"), kwargs.get(
        "relevance_threshold"))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        summary, frame = fk.evaluate(model, test, _metrics(ks), per_user=True, **kwargs)
    frame = frame.set_index("user").loc[want["user"]]
    for name in want.columns.drop("user"):
        np.testing.assert_allclose(frame[name].to_numpy(), want[name].to_numpy(), atol=1e-12)
    assert summary.keys() == want_summary.keys() or set(summary) == set(want_summary)
    for name, value in want_summary.items():
        assert summary[name] == pytest.approx(value, abs=1e-12), name
    return summary


@pytest.mark.parametrize("threshold", [None, 3.0])
@pytest.mark.parametrize("small_blocks", [False, True])
def test_random_data_matches_reference(monkeypatch, threshold, small_blocks):
    rng = np.random.default_rng(0)
    n_users, n_items = 70, 40
    cells = rng.permutation(n_users * n_items)[:900]
    users = np.array([f"u{c // n_items}" for c in cells], dtype=object)
    items = np.array([f"i{c % n_items}" for c in cells], dtype=object)
    values = rng.integers(1, 6, len(cells)).astype(float)
    in_test = rng.random(len(cells)) < 0.3
    train = fk.Interactions.from_arrays(users[~in_test], items[~in_test], values[~in_test])
    test = fk.Interactions.from_arrays(
        np.append(users[in_test], ["ghost", "ghost"]),  # a user unknown to the model
        np.append(items[in_test], ["i1", "nowhere"]),  # and an item unknown to it
        np.append(values[in_test], [5.0, 4.0]),
    )
    model = _FixedScores().fit(train)
    n_u, n_i = len(model.user_map_), len(model.item_map_)
    # small integer factors: exact float32 scores, many ties
    model.user_factors_ = rng.integers(-2, 3, (n_u, 3)).astype(np.float32)
    model.item_factors_ = rng.integers(-2, 3, (n_i, 3)).astype(np.float32)
    model.item_bias_ = rng.integers(-2, 3, n_i).astype(np.float64)
    if small_blocks:  # several blocks in the blocked pass
        monkeypatch.setattr("factorkit.models._factor._BLOCK_FLOATS", 7 * n_i)
    summary = _compare(model, test, (1, 5, 10), relevance_threshold=threshold)
    # the same top-k metrics without AUC (the model's own top_items path)
    with pytest.warns(DataWarning, match="evaluated test users are unknown"):  # ghost
        topk_only = fk.evaluate(
            model, test, _metrics((1, 5, 10))[:-4], relevance_threshold=threshold
        )
    for name, value in topk_only.items():
        assert value == summary[name]
    # and train= with extra items to leave out
    both = pd.concat([train.to_pandas(), test.to_pandas()])  # train + test: nothing left
    extra = fk.Interactions.from_pandas(both, rating="rating")
    _compare(model, test, (5,), train=train)
    with pytest.warns(DataWarning, match="no test user has a relevant item"):
        fk.evaluate(model, test, ["ndcg@5"], train=extra)


@pytest.fixture(scope="module")
def ml_split():
    data = fk.datasets.load_movielens_small()
    return fk.split.per_user(data, test_size=0.2, random_state=0)


@pytest.mark.parametrize("model_cls", [MostPopular, fk.BaselineOnly])
def test_movielens_small_matches_reference(ml_split, model_cls):
    train, test = ml_split
    model = model_cls().fit(train)
    _compare(model, test, (10,), relevance_threshold=4.0)


def test_recommend_agrees_with_evaluation(ml_split):
    # the evaluation's top-k is recommend(exclude_seen=True)'s list
    train, test = ml_split
    model = MostPopular().fit(train)
    users = test.user_map.ids[np.unique(test.user_index)][:50]
    items, _ = model.recommend(users, k=5)
    _, frame = fk.evaluate(model, test.select_users(users), ["precision@5"], per_user=True)
    rel = test.to_pandas().groupby("user")["item"].agg(set)
    want = [np.isin(items[j], list(rel[u])).sum() / 5 for j, u in enumerate(users)]
    np.testing.assert_allclose(frame.set_index("user").loc[users, "precision@5"], want)
