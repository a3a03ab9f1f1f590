"""The CSV number parser against Python's own int() / float() on the same text."""

from __future__ import annotations

import numpy as np
import pytest

from factorkit.kernels import parsing

ROLES = np.array(
    [parsing.FIELD_USER, parsing.FIELD_ITEM, parsing.FIELD_RATING, parsing.FIELD_TIME],
    dtype=np.int8,
)


def parse(text: str, roles=ROLES, sep: str = ",", n_chunks: int = 3):
    """Run the two kernels the way the reader does; (status, users, items, values, times)."""
    raw = bytearray(text.encode()) + b"\0"
    buf = np.frombuffer(raw, dtype=np.uint8)
    end = len(raw) - 1
    cuts = [0]
    for c in range(1, n_chunks):
        at = raw.find(b"\n", max(cuts[-1], c * end // n_chunks), end) + 1
        cuts.append(at if at > 0 else end)
    cuts.append(end)
    starts = np.array(cuts[:-1], dtype=np.int64)
    ends = np.array(cuts[1:], dtype=np.int64)
    counts = np.empty(n_chunks, dtype=np.int64)
    parsing.csv_count_lines(buf, starts, ends, counts)
    first = np.concatenate(([0], np.cumsum(counts[:-1])))
    n = int(counts.sum())
    out = (
        np.full(n, -1, np.int32),
        np.full(n, -1, np.int32),
        np.full(n, np.nan, np.float32),
        np.full(n, -1, np.int64),
    )
    status = np.empty(n_chunks, dtype=np.int8)
    sep1 = ord(sep[1]) if len(sep) > 1 else -1
    parsing.csv_parse_rows(buf, starts, ends, first, ord(sep[0]), sep1, roles, *out, status)
    return int(status.max()), *out


def reference(text: str, sep: str = ","):
    rows = [line.rstrip("\r").split(sep) for line in text.splitlines()]
    return (
        [int(r[0]) for r in rows],
        [int(r[1]) for r in rows],
        [np.float32(float(r[2])) for r in rows],
        [int(r[3]) for r in rows],
    )


def test_numbers_match_python():
    rng = np.random.default_rng(0)
    ratings = ["4.0", "3.5", "5", "0.5", "-2.25", "+1", ".5", "7.", "1e3", "2.5E-2",
               "123456.789", "0.1", "3.14159265358979", "1e-22", "9007199254740992"]  # fmt: skip
    lines = [
        f"{rng.integers(-(2**31), 2**31)},{rng.integers(0, 10**6)},{rng.choice(ratings)},"
        f"{rng.integers(-(10**17), 10**17)}"
        for _ in range(500)
    ]
    text = "\n".join(lines) + "\n"
    status, users, items, values, times = parse(text)
    assert status == parsing.PARSE_OK
    want = reference(text)
    assert users.tolist() == want[0] and items.tolist() == want[1]
    assert values.tolist() == want[2]  # float() is correctly rounded; so is the parser
    assert times.tolist() == want[3]


@pytest.mark.parametrize("sep", ["\t", "::", ";"])
def test_separators_and_crlf(sep):
    text = f"1{sep}10{sep}4.5{sep}100\r\n2{sep}20{sep}3{sep}200\r\n"
    status, users, items, values, times = parse(text, sep=sep, n_chunks=2)
    assert status == parsing.PARSE_OK
    assert (users.tolist(), items.tolist(), values.tolist(), times.tolist()) == (
        [1, 2], [10, 20], [4.5, 3.0], [100, 200]
    )  # fmt: skip


def test_skipped_fields_may_hold_anything_but_quotes_and_separators():
    roles = np.array([parsing.FIELD_USER, parsing.FIELD_SKIP, parsing.FIELD_ITEM], np.int8)
    status, users, items, *_ = parse("1,Toy Story (1995),10\n2,,20\n", roles=roles)
    assert status == parsing.PARSE_OK and users.tolist() == [1, 2] and items.tolist() == [10, 20]
    assert parse('1,"Heat, 1995",10\n', roles=roles)[0] == parsing.PARSE_IRREGULAR


@pytest.mark.parametrize(
    "line",
    [
        "1,10,abc,5",  # text rating
        "1,10,,5",  # empty field
        "1,10,4.0",  # a field short
        "1,10,4.0,5,6",  # a field too many
        "1,10,nan,5",  # NaN: the general path names it
        "1,10,4.0,5.5",  # fractional timestamp
        "a1,10,4.0,5",  # text id
        " 1,10,4.0,5",  # padding
        "1,10,4.0e,5",  # exponent without digits
        "1,10,1e23,5",  # beyond the exact fast path
        "1,10,12345678901234567890,5",  # mantissa beyond 2**53
        "1,10,4.0\r,5",  # a carriage return inside a line
        "",  # a blank line
    ],
)
def test_irregular_lines_are_reported(line):
    text = "1,10,4.0,5\n" + line + "\n" + "2,20,3.0,6\n"
    assert parse(text)[0] == parsing.PARSE_IRREGULAR


def test_ids_beyond_int32_are_reported():
    assert parse("1,2147483648,4.0,5\n")[0] == parsing.PARSE_WIDE_ID
    assert parse("-2147483648,2147483647,4.0,5\n")[0] == parsing.PARSE_OK
