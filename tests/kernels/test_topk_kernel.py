import numpy as np
import pytest

from factorkit._threads import using_threads
from factorkit.kernels.topk import (
    topk_factors,
    topk_scores,
)


def reference_topk(scores, seen_indptr, seen_indices, excluded, k):
    """Straightforward NumPy top-k: mask, then stable sort by (-score, column)."""
    n_rows = scores.shape[0]
    idx = np.full((n_rows, k), -1, dtype=np.int64)
    val = np.full((n_rows, k), -np.inf, dtype=scores.dtype)
    for r in range(n_rows):
        ok = ~excluded.copy()
        ok[seen_indices[seen_indptr[r] : seen_indptr[r + 1]]] = False
        ok &= ~np.isnan(scores[r])
        cols = np.flatnonzero(ok)
        order = cols[np.lexsort((cols, -scores[r, cols]))][:k]
        idx[r, : len(order)] = order
        val[r, : len(order)] = scores[r, order]
    return idx, val


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32])  # the scores every caller passes
def test_topk_matches_reference_with_ties_seen_and_padding(n_threads, dtype):
    rng = np.random.default_rng(0)
    n_rows, n_cols, k = 300, 57, 10
    # rounded scores create many ties; NaNs never rank
    scores = rng.integers(0, 6, size=(n_rows, n_cols)).astype(dtype)
    scores[rng.random(scores.shape) < 0.05] = np.nan
    counts = rng.integers(0, n_cols, size=n_rows)  # some rows keep fewer than k candidates
    seen_indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=seen_indptr[1:])
    seen_indices = np.concatenate([rng.permutation(n_cols)[:c] for c in counts]).astype(np.int32)
    excluded = np.zeros(n_cols, dtype=np.bool_)
    excluded[[3, 7]] = True
    out_idx = np.empty((n_rows, k), dtype=np.int64)
    out_val = np.empty((n_rows, k), dtype=dtype)
    with using_threads(n_threads):
        topk_scores(scores, seen_indptr, seen_indices, excluded, k, out_idx, out_val)
    ref_idx, ref_val = reference_topk(scores, seen_indptr, seen_indices, excluded, k)
    np.testing.assert_array_equal(out_idx, ref_idx)
    np.testing.assert_array_equal(out_val, ref_val)
    assert (out_idx[counts >= n_cols - 2] == -1).any()  # padding was exercised


@pytest.mark.parametrize(
    ("n_threads", "block_rows"),
    [(2, 16), (1, 16), (2, 128)],
    ids=["parallel", "one-thread", "few-rows"],
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_topk_factors_matches_reference_on_the_same_scores(n_threads, block_rows, with_bias):
    """Scores from factors by blocks (uneven last block), bias added, seen items and an
    excluded item skipped, users with fewer than k candidates padded; on the thread pool,
    and on the calling thread (one thread, or fewer than two blocks of rows)."""
    rng = np.random.default_rng(1)
    n_rows, n_cols, k, rank = 203, 90, 12, 6
    # small integer factors: every product is exact, so ties are real ties
    users = rng.integers(-2, 3, size=(n_rows, rank)).astype(np.float32)
    items = rng.integers(-2, 3, size=(n_cols, rank)).astype(np.float32)
    bias = rng.integers(0, 2, size=n_cols).astype(np.float32) if with_bias else np.zeros(0)
    counts = rng.integers(0, n_cols, size=n_rows)
    seen_indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=seen_indptr[1:])
    seen_indices = np.concatenate([rng.permutation(n_cols)[:c] for c in counts]).astype(np.int32)
    excluded = np.zeros(n_cols, dtype=np.bool_)
    excluded[5] = True
    scores = users @ items.T + (bias if with_bias else 0)
    want_idx, want_val = reference_topk(scores, seen_indptr, seen_indices, excluded, k)
    out_idx = np.empty((n_rows, k), dtype=np.int64)
    out_val = np.empty((n_rows, k), dtype=np.float32)
    with using_threads(n_threads):
        topk_factors(
            users, np.ascontiguousarray(items.T), bias.astype(np.float32), block_rows,
            seen_indptr, seen_indices, excluded, k, out_idx, out_val, n_threads,
        )  # fmt: skip
    np.testing.assert_array_equal(out_idx, want_idx)
    np.testing.assert_array_equal(out_val, want_val)
    assert (out_idx == -1).any()  # some users had fewer than k candidates
