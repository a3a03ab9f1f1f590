"""Delimited-text parsing: lines of plain numbers -> typed columns, in parallel.

The reader cuts a buffer of whole lines into chunks at line ends, counts each chunk's
lines (:func:`csv_count_lines`) to know where its rows go, then parses every chunk at once
(:func:`csv_parse_rows`). The parser handles only the regular case -- unquoted integers
and decimal numbers, one record per line -- and reports anything else through its status
codes, so that the caller can hand the file to a general (slower, exact) parser.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from factorkit.kernels._jit import jit

__all__ = [
    "FIELD_ITEM",
    "FIELD_RATING",
    "FIELD_SKIP",
    "FIELD_TIME",
    "FIELD_USER",
    "PARSE_IRREGULAR",
    "PARSE_OK",
    "PARSE_WIDE_ID",
    "csv_count_lines",
    "csv_parse_rows",
]

#: What each field of a line holds (the ``roles`` argument of :func:`csv_parse_rows`).
FIELD_SKIP, FIELD_USER, FIELD_ITEM, FIELD_RATING, FIELD_TIME = 0, 1, 2, 3, 4
#: Status codes, one per chunk.
PARSE_OK = 0
PARSE_IRREGULAR = 1  # anything but plain numbers and separators: use a general parser
PARSE_WIDE_ID = 2  # an integer id outside int32

_NL = 10
_CR = 13
_QUOTE = 34
_MINUS = 45
_PLUS = 43
_DOT = 46
_ZERO = 48
_E_LOWER = 101
_E_UPPER = 69
_INT32_MAX = 2147483647
_MAX_EXACT = 9007199254740992  # 2**53: integers up to here are exact in float64
_MAX_INT = 999_999_999_999_999_999  # 18 digits: no int64 overflow on the next digit
_POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)


@jit(parallel=True)
def csv_count_lines(buf, starts, ends, counts):  # pragma: no cover - compiled
    """``counts[c]`` = number of ``\\n`` bytes in ``buf[starts[c]:ends[c]]``."""
    for c in prange(len(starts)):
        n = 0
        for p in range(starts[c], ends[c]):
            n += buf[p] == _NL
        counts[c] = n


@jit()
def _field_end(buf, p, sep0, sep1, last):  # pragma: no cover - compiled
    """Position after the separator ending a field at ``p``; -1 if ``p`` is not one.

    ``last`` fields end at ``\\n`` or ``\\r\\n``; others at the separator (``sep1`` >= 0 is
    the second byte of a two-byte separator).
    """
    b = buf[p]
    if last:
        if b == _NL:
            return p + 1
        if b == _CR and buf[p + 1] == _NL:
            return p + 2
        return -1
    if b != sep0:
        return -1
    if sep1 >= 0:
        if buf[p + 1] != sep1:
            return -1
        return p + 2
    return p + 1


@jit()
def _digits(buf, p, value, limit):  # pragma: no cover - compiled
    """Decimal digits from ``buf[p]`` on, appended to ``value``: (end, value, count).

    ``count`` is -1 once the value passes ``limit`` (the caller gives up on the line).
    """
    count = 0
    while True:
        d = buf[p] - _ZERO
        if d < 0 or d > 9:
            return p, value, count
        value = value * 10 + d
        if value > limit:
            return p, value, -1
        count += 1
        p += 1


@jit()
def _parse_chunk(
    buf, start, end, row, sep0, sep1, roles, users, items, values, times
):  # pragma: no cover - compiled
    """Parse the whole lines in ``buf[start:end]`` into rows from ``row`` on; a status."""
    n_fields = len(roles)
    p = start
    while p < end:
        for f in range(n_fields):
            role = roles[f]
            last = f == n_fields - 1
            if role == FIELD_SKIP:
                q = p
                while True:
                    b = buf[q]
                    if b == _QUOTE:
                        return PARSE_IRREGULAR
                    if b == _NL or b == _CR:
                        break
                    if b == sep0:
                        if last:
                            return PARSE_IRREGULAR  # more fields than the header
                        break
                    q += 1
                p = q
            elif role == FIELD_RATING:
                neg = buf[p] == _MINUS
                if neg or buf[p] == _PLUS:
                    p += 1
                p, mant, n_int = _digits(buf, p, 0, _MAX_EXACT)
                n_frac = 0
                if n_int >= 0 and buf[p] == _DOT:
                    p, mant, n_frac = _digits(buf, p + 1, mant, _MAX_EXACT)
                if n_int < 0 or n_frac < 0 or n_int + n_frac == 0:
                    return PARSE_IRREGULAR  # no digits, or beyond an exact mantissa
                exp10 = -n_frac
                if buf[p] == _E_LOWER or buf[p] == _E_UPPER:
                    p += 1
                    eneg = buf[p] == _MINUS
                    if eneg or buf[p] == _PLUS:
                        p += 1
                    p, e, n_exp = _digits(buf, p, 0, 1000)
                    if n_exp <= 0:
                        return PARSE_IRREGULAR
                    exp10 += -e if eneg else e
                # Clinger's fast path: an exact mantissa times or over an exact power of
                # ten is correctly rounded, as strtod would give.
                if exp10 > 22 or exp10 < -22:
                    return PARSE_IRREGULAR
                v = float(mant)
                v = v * _POW10[exp10] if exp10 >= 0 else v / _POW10[-exp10]
                values[row] = -v if neg else v
            else:
                neg = buf[p] == _MINUS
                if neg:
                    p += 1
                p, v, n_digits = _digits(buf, p, 0, _MAX_INT)
                if n_digits <= 0:
                    return PARSE_IRREGULAR
                if neg:
                    v = -v
                if role == FIELD_TIME:
                    times[row] = v
                else:
                    if v > _INT32_MAX or v < -_INT32_MAX - 1:
                        return PARSE_WIDE_ID
                    if role == FIELD_USER:
                        users[row] = v
                    else:
                        items[row] = v
            p = _field_end(buf, p, sep0, sep1, last)
            if p < 0:
                return PARSE_IRREGULAR
        row += 1
    return PARSE_OK


@jit(parallel=True)
def csv_parse_rows(
    buf, starts, ends, first_rows, sep0, sep1, roles, users, items, values, times, status
):  # pragma: no cover - compiled
    """Parse chunks of whole lines in parallel; ``status[c]`` reports chunk ``c``.

    Chunk ``c`` is ``buf[starts[c]:ends[c]]``: complete lines, each ending in ``\\n``
    (``buf`` must hold one readable byte past the last chunk). Its rows go to the output
    arrays from ``first_rows[c]`` on. ``roles[f]`` says what field ``f`` holds (the
    ``FIELD_*`` constants); ``sep1`` is -1 for one-byte separators. Ids go to int32
    ``users`` / ``items``, ratings to float32 ``values``, timestamps to int64 ``times``.
    Status is ``PARSE_OK``, ``PARSE_IRREGULAR`` (quotes, text, empty or extra fields,
    blank lines, numbers beyond exact float64 parsing) or ``PARSE_WIDE_ID``.
    """
    for c in prange(len(starts)):
        status[c] = _parse_chunk(
            buf, starts[c], ends[c], first_rows[c], sep0, sep1, roles, users, items, values, times
        )
