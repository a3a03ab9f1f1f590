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
    rows_out = np.empty(n, dtype=np.int32)
    cols_out = np.empty(n, dtype=np.int32)
    keys = np.empty(n, dtype=np.int64)
    if presorted_rows:
        ordering.pairs_keys_in_place(cols, keys)
    else:
        col_ptr = np.zeros(n_cols + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=n_cols), out=col_ptr[1:])
        ordering.pairs_radix_keys(rows, cols, indptr, col_ptr, keys)
        inside_rows = np.ones(n - 1, dtype=bool)
        inside_rows[indptr[1:-1] - 1] = False
        assert (np.diff(keys)[inside_rows] > 0).all()  # each row's keys come out sorted
    repeats = ordering.pairs_sort_rows(indptr, keys, order, rows_out, cols_out)
    expected = np.lexsort((cols, rows))  # stable: ties keep input order
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(rows_out, rows[expected])
    np.testing.assert_array_equal(cols_out, cols[expected])
    assert repeats
    values = rng.normal(size=n)
    out = np.empty(n)
    ordering.take(values, order, out)
    np.testing.assert_array_equal(out, values[order])


def test_pairs_sort_reports_no_repeats_for_distinct_pairs():
    cols = np.array([5, 1, 3, 2, 0], dtype=np.int32)
    indptr = np.array([0, 3, 5], dtype=np.int64)
    keys = np.empty(5, dtype=np.int64)
    ordering.pairs_keys_in_place(cols, keys)
    order = np.empty(5, dtype=np.int32)
    rows_out, cols_out = np.empty(5, np.int32), np.empty(5, np.int32)
    assert not ordering.pairs_sort_rows(indptr, keys, order, rows_out, cols_out)
    assert order.tolist() == [1, 2, 0, 4, 3] and cols_out.tolist() == [1, 3, 5, 0, 2]
    assert rows_out.tolist() == [0, 0, 0, 1, 1]
