"""Factorize and pair-sorting kernels against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

from factorkit.kernels import ordering


def test_mark_and_lookup_give_sorted_codes():
    rng = np.random.default_rng(0)
    values = rng.integers(-300, 700, 5_000).astype(np.int32)
    lo = values.min()
    present = np.zeros(values.max() - lo + 1, dtype=np.uint8)
    ordering.ids_mark(values, lo, present)
    uniques = np.flatnonzero(present) + lo
    np.testing.assert_array_equal(uniques, np.unique(values))
    table = (np.cumsum(present) - 1).astype(np.int32)
    codes = np.empty(len(values), dtype=np.int32)
    ordering.ids_lookup(values, lo, table, codes)
    np.testing.assert_array_equal(codes, np.searchsorted(uniques, values))


@pytest.mark.parametrize("presorted_rows", [True, False])
def test_pairs_sort_is_a_stable_row_major_sort(presorted_rows):
    rng = np.random.default_rng(1)
    n, n_rows, n_cols = 20_000, 300, 50  # many repeated pairs
    rows = rng.integers(0, n_rows, n).astype(np.int32)
    if presorted_rows:
        rows.sort()
    cols = rng.integers(0, n_cols, n).astype(np.int32)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    assert ordering.sorted_nondecreasing(rows) == presorted_rows
    order = np.empty(n, dtype=np.int32)
    ordering.rows_counting_order(rows, indptr, order)
    np.testing.assert_array_equal(order, np.argsort(rows, kind="stable"))
    cols_out = np.empty(n, dtype=np.int32)
    repeats = ordering.pairs_sort_within_rows(indptr, cols, order, cols_out)
    expected = np.lexsort((cols, rows))  # stable: ties keep input order
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(cols_out, cols[expected])
    assert repeats
    values = rng.normal(size=n)
    out = np.empty(n)
    ordering.take(values, order, out)
    np.testing.assert_array_equal(out, values[order])


def test_pairs_sort_reports_no_repeats_for_distinct_pairs():
    cols = np.array([5, 1, 3, 2, 0], dtype=np.int32)
    indptr = np.array([0, 3, 5], dtype=np.int64)
    order = np.arange(5, dtype=np.int32)
    cols_out = np.empty(5, np.int32)
    assert not ordering.pairs_sort_within_rows(indptr, cols, order, cols_out)
    assert order.tolist() == [1, 2, 0, 4, 3] and cols_out.tolist() == [1, 3, 5, 0, 2]
    ordered = np.array([0, 4, 9, 1, 2], dtype=np.int32)  # rows already in column order
    order = np.arange(5, dtype=np.int32)
    assert not ordering.pairs_sort_within_rows(indptr, ordered, order, cols_out)
    assert order.tolist() == [0, 1, 2, 3, 4] and cols_out.tolist() == ordered.tolist()
