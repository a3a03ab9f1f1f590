"""ranking kernels against literal NumPy implementations of the metric definitions."""

import numpy as np
import pytest

from factorkit.kernels.ranking import (
    HIT_RATE,
    MAP,
    MRR,
    NDCG,
    PRECISION,
    RECALL,
    ranking_auc,
    ranking_topk_metrics,
)

CODES = {"precision": PRECISION, "recall": RECALL, "ndcg": NDCG, "map": MAP, "mrr": MRR}
CODES["hit_rate"] = HIT_RATE


def _reference_topk(ranked, relevant, n_rel, kind, k):
    hit = [c >= 0 and c in relevant for c in ranked[:k]]
    if kind == "precision":
        return sum(hit) / k
    if kind == "recall":
        return sum(hit) / n_rel
    if kind == "hit_rate":
        return float(any(hit))
    if kind == "mrr":
        return next((1 / (j + 1) for j, h in enumerate(hit) if h), 0.0)
    if kind == "ndcg":
        dcg = sum(1 / np.log2(j + 2) for j, h in enumerate(hit) if h)
        return dcg / sum(1 / np.log2(j + 2) for j in range(min(k, n_rel)))
    if kind == "map":
        prec = [sum(hit[: j + 1]) / (j + 1) for j in range(len(hit))]
        return sum(p for p, h in zip(prec, hit, strict=True) if h) / min(k, n_rel)
    raise AssertionError(kind)


def _csr(rows):
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    idx = np.array([c for r in rows for c in sorted(r)], dtype=np.int32)
    return ptr, idx


def test_topk_metrics_match_reference():
    rng = np.random.default_rng(0)
    n_users, n_items, width = 200, 30, 12
    topk = np.empty((n_users, width), dtype=np.int64)
    rel_rows, n_rel = [], np.empty(n_users, dtype=np.int64)
    for u in range(n_users):
        n_cand = rng.integers(0, 20)  # some users have fewer candidates than width
        ranked = rng.permutation(n_items)[: min(n_cand, width)]
        topk[u] = -1
        topk[u, : len(ranked)] = ranked
        rel = rng.choice(n_items, size=rng.integers(0, 8), replace=False)
        rel_rows.append(set(rel.tolist()))
        n_rel[u] = len(rel) + rng.integers(0, 3)  # plus relevant items with no position
        n_rel[u] = max(n_rel[u], 1)
    ptr, idx = _csr(rel_rows)
    specs = [(kind, k) for kind in CODES for k in (1, 5, width)]
    out = np.full((n_users, len(specs)), np.nan)
    ranking_topk_metrics(
        topk,
        ptr,
        idx,
        n_rel,
        np.array([CODES[kind] for kind, _ in specs], dtype=np.int64),
        np.array([k for _, k in specs], dtype=np.int64),
        out,
    )
    for u in range(n_users):
        for m, (kind, k) in enumerate(specs):
            want = _reference_topk(topk[u].tolist(), rel_rows[u], int(n_rel[u]), kind, k)
            assert out[u, m] == pytest.approx(want, abs=1e-12), (u, kind, k)


def _reference_auc(scores, seen, relevant, n_rel):
    s = np.where(np.isnan(scores), -np.inf, scores)
    cand = [c for c in range(len(s)) if c not in seen]
    neg = [c for c in cand if c not in relevant]
    if not neg:
        return np.nan
    won = sum((s[p] > s[q]) + 0.5 * (s[p] == s[q]) for p in relevant for q in neg)
    return won / (n_rel * len(neg))


@pytest.mark.parametrize("dtype", [np.float32])  # score_blocks yields float32
def test_auc_matches_pairwise_reference(dtype):
    rng = np.random.default_rng(1)
    n_rows, n_cols = 60, 25
    scores = rng.integers(-3, 4, (n_rows, n_cols)).astype(dtype)  # many ties
    scores[rng.random(scores.shape) < 0.03] = np.nan
    seen_rows, rel_rows, n_rel = [], [], np.empty(n_rows, dtype=np.int64)
    for r in range(n_rows):
        perm = rng.permutation(n_cols)
        n_seen = rng.integers(0, 6) if r else n_cols - 3  # row 0: 3 candidates
        n_pos = rng.integers(1, 5) if r % 7 else 3  # every 7th row: no negatives in row 0
        seen_rows.append(set(perm[:n_seen].tolist()))
        rel_rows.append(set(perm[n_seen : n_seen + n_pos].tolist()))
        n_rel[r] = len(rel_rows[r]) + (r % 3 == 0)  # one unknown relevant item
    seen_ptr, seen_idx = _csr(seen_rows)
    rel_ptr, rel_idx = _csr(rel_rows)
    out = np.empty(n_rows)
    ranking_auc(scores, seen_ptr, seen_idx, rel_ptr, rel_idx, n_rel, out)
    for r in range(n_rows):
        want = _reference_auc(scores[r], seen_rows[r], rel_rows[r], n_rel[r])
        if np.isnan(want):
            assert np.isnan(out[r])
        else:
            assert out[r] == pytest.approx(want, abs=1e-12), r
    assert np.isnan(out[0])  # 3 candidates, all relevant


def test_auc_hand_worked():
    # candidates 0..3 (4 is seen); relevant {0, 2}; scores 0:2, 1:2, 2:0, 3:1, 4:9
    # pairs: 0 vs 1 tie (0.5), 0 vs 3 won (1), 2 vs 1 lost, 2 vs 3 lost -> 1.5 / 4
    scores = np.array([[2.0, 2.0, 0.0, 1.0, 9.0]])
    out = np.empty(1)
    ptr = np.array([0, 1])
    ranking_auc(
        scores, ptr, np.array([4], np.int32), np.array([0, 2]), np.array([0, 2], np.int32),
        np.array([2]), out,
    )  # fmt: skip
    assert out[0] == 0.375
