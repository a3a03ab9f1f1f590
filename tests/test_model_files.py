"""Model files are untrusted input: every damaged or edited file gives a clean
ModelFormatError naming the file and the field, or loads into a working model; never a
crash. Edits that recompute the checksums (as a tamperer would) are caught by the
structural checks; damage that leaves checksums stale is caught by them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import ModelFormatError


@pytest.fixture(scope="module")
def data():
    return fk.datasets.load_movielens_small()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, data):
    """One saved file per kind of model, with the fitted model it came from."""
    root = tmp_path_factory.mktemp("models")
    liked = data.to_implicit(min_value=4.0)
    models = {
        "biased": (fk.BiasedMF(factors=8, epochs=2, random_state=0), data),
        "svdpp": (fk.SVDpp(factors=8, epochs=1, random_state=0), data),
        "time": (fk.TimeSVDpp(factors=8, epochs=1, time_bins=5, random_state=0), data),
        "ials": (fk.ImplicitALS(factors=8, epochs=2, random_state=0), liked),
        "baseline": (fk.BaselineOnly(epochs=2), data),
        "popular": (fk.MostPopular(), liked),
    }
    out = {}
    for name, (model, train) in models.items():
        model.fit(train)
        path = root / f"{name}.fk"
        model.save(path)
        out[name] = (path, model)
    return out


def _edited(
    files, saved, tmp_path, name="biased", meta_edit=None, array_edit=None, meta_bytes=None
):
    meta, arrays = files.read(saved[name][0])
    if meta_edit:
        meta_edit(meta)
    if array_edit:
        array_edit(arrays)
    return files.write(tmp_path / "edited.fk", meta, arrays, meta_bytes)


def _set(arrays, name, value):
    arrays[name] = value


CASES = {
    "item factors with 10 rows": (
        dict(array_edit=lambda a: _set(a, "item_factors_", a["item_factors_"][:10])),
        "array 'item_factors_' shape: expected 9724 rows (one per id); found (10, 8)",
    ),
    "seen index out of range": (
        dict(array_edit=lambda a: a["seen_indices_"].__setitem__(5, 10**6)),
        "array 'seen_indices_': expected item positions in [0, 9724); found 'positions 0..1000000'",
    ),
    "seen offsets decreasing": (
        dict(array_edit=lambda a: a["seen_indptr_"].__setitem__(3, 0)),
        "array 'seen_indptr_': expected non-decreasing offsets from 0 to 100836",
    ),
    "factors=-3": (
        dict(meta_edit=lambda m: m["params"].__setitem__("factors", -3)),
        "parameter 'factors': expected an int >= 1; found -3",
    ),
    "a scalar named predict": (
        dict(meta_edit=lambda m: m["scalars"].__setitem__("predict", 1.0)),
        "BiasedMF scalars: expected names among ['global_mean_', 'rating_scale_']; "
        "found ['predict']",
    ),
    "a missing key": (
        dict(meta_edit=lambda m: m.pop("params")),
        "metadata: expected the key(s) params",
    ),
    "params of the wrong type": (
        dict(meta_edit=lambda m: m.__setitem__("params", [1, 2])),
        "metadata 'params': expected an object; found [1, 2]",
    ),
    "NaN in user factors": (
        dict(array_edit=lambda a: a["user_factors_"].__setitem__((0, 0), np.nan)),
        "array 'user_factors_': expected finite values; found 'NaN or infinity'",
    ),
    "repeated user ids": (
        dict(array_edit=lambda a: a["user_ids"].__setitem__(1, a["user_ids"][0])),
        "array 'user_ids': expected unique ids; found 'repeated ids'",
    ),
    "integer biases": (
        dict(array_edit=lambda a: _set(a, "user_bias_", np.zeros(610, np.int64))),
        "array 'user_bias_': expected a 1-D float vector",
    ),
    "an unknown array": (
        dict(array_edit=lambda a: _set(a, "predict", np.zeros(3))),
        "BiasedMF arrays: expected names among",
    ),
    "time-bin biases flattened": (
        dict(
            name="time",
            array_edit=lambda a: _set(a, "item_bin_bias_", a["item_bin_bias_"].reshape(-1)),
        ),
        "array 'item_bin_bias_' shape: expected 9724 rows (one per id); found (48620,)",
    ),
    "time-bin biases of one column": (
        dict(
            name="time",
            array_edit=lambda a: _set(a, "item_bin_bias_", a["item_bin_bias_"][:, 0]),
        ),
        "array 'item_bin_bias_': expected a 2-D float matrix (rows x bins); "
        "found 'float32 (9724,)'",
    ),
    "day offsets past the day biases": (
        dict(name="time", array_edit=lambda a: _set(a, "day_bias_", a["day_bias_"][:-5])),
        "array 'day_indptr_': expected non-decreasing offsets from 0 to",
    ),
    "day offsets for too few users": (
        dict(name="time", array_edit=lambda a: _set(a, "day_indptr_", a["day_indptr_"][:-1])),
        "array 'day_indptr_': expected 611 int64 offsets; found 'int64 (610,)'",
    ),
    "metadata that is not JSON": (
        dict(meta_bytes=b"{not json"),
        "metadata is not valid JSON",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_edited_file_is_refused_naming_the_field(model_files, saved, tmp_path, case):
    edit, message = CASES[case]
    path = _edited(model_files, saved, tmp_path, **edit)
    with pytest.raises(ModelFormatError) as info:
        fk.load(path)
    text = str(info.value)
    assert text.startswith(str(path)), text
    assert message in text, text


def test_other_kinds_of_file_are_named(tmp_path):
    npy = tmp_path / "weights.fk"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros(3))
    text = tmp_path / "notes.fk"
    text.write_text("hello\n")
    empty = tmp_path / "empty.fk"
    empty.write_bytes(b"")
    for path, found in (
        (npy, "a single NumPy array (.npy)"),
        (text, "some other kind of file"),
        (empty, "an empty file"),
    ):
        with pytest.raises(ModelFormatError, match=r"not a factorkit model file") as info:
            fk.load(path)
        assert found in str(info.value)
        assert "allow_pickle" not in str(info.value)


def test_info_verifies_every_array(saved, tmp_path):
    from factorkit.cli import main

    path, _ = saved["biased"]
    damaged = tmp_path / "flipped.fk"
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        member = z.getinfo("item_factors_.npy")
    offset = member.header_offset + 30 + len(member.filename) + 200  # inside the data
    raw[offset] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    assert main(["info", str(path)]) == 0
    assert main(["info", str(damaged)]) == 2


FUZZ_CHILD = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    import factorkit as fk
    from factorkit.exceptions import ModelFormatError

    warnings.simplefilter("ignore")
    cases = json.loads(open(sys.argv[1]).read())
    users = [1, 2, 3]
    items = [1, 2, 318]
    results = []
    for case in cases:
        reference = fk.load(case["original"])
        try:
            model = fk.load(case["path"])
        except ModelFormatError:
            results.append("refused")
            continue
        scores = model.predict(users, items)
        ids, recs = model.recommend(users[0], k=5)
        same = np.array_equal(scores, reference.predict(users, items)) and np.array_equal(
            ids, reference.recommend(users[0], k=5)[0]
        )
        if case["checksums"] == "stale" and not same:
            results.append("silently different: " + case["path"])
        elif not np.isfinite(scores).all():
            results.append("non-finite predictions: " + case["path"])
        else:
            results.append("identical" if same else "works")
    print(json.dumps(results))
    """
)


def _fuzz_cases(files, saved, root: Path, rng: np.random.Generator) -> list[dict]:
    cases = []
    for name, (path, _) in saved.items():
        raw = path.read_bytes()
        meta, arrays = files.read(path)
        for k in range(6):  # damage with stale checksums: truncation and byte flips
            damaged = bytearray(raw[: rng.integers(0, len(raw))] if k < 2 else raw)
            for _ in range(0 if k < 2 else int(rng.integers(1, 9))):
                damaged[rng.integers(0, len(damaged))] ^= int(rng.integers(1, 256))
            out = root / f"{name}-damaged-{k}.fk"
            out.write_bytes(bytes(damaged))
            cases.append({"path": str(out), "original": str(path), "checksums": "stale"})
        for k in range(6):  # edits with recomputed checksums: values, shapes, dtypes
            edited = {a: v.copy() for a, v in arrays.items()}
            target = sorted(edited)[rng.integers(0, len(edited))]
            arr = edited[target]
            choice = rng.integers(0, 3)
            if choice == 0 and arr.size:
                flat = arr.reshape(-1)
                flat[rng.integers(0, flat.size)] = rng.choice([-1, 10**6, 2**31 - 1, 0])
            elif choice == 1 and arr.ndim and len(arr) > 1:
                edited[target] = arr[: rng.integers(0, len(arr))]
            else:
                edited[target] = arr.astype(rng.choice([np.int8, np.float64, np.int32]))
            out = files.write(root / f"{name}-edited-{k}.fk", json.loads(json.dumps(meta)), edited)
            cases.append({"path": str(out), "original": str(path), "checksums": "recomputed"})
    return cases


def test_fuzzed_files_never_crash(model_files, saved, tmp_path):
    """A bounded number of mutated files (72) are loaded in a child process: each is
    refused cleanly or loads into a working model; damage never loads silently different,
    and nothing crashes the process (a segfault would fail the exit-code check)."""
    cases = _fuzz_cases(model_files, saved, tmp_path, np.random.default_rng(20261203))
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    proc = subprocess.run(
        [sys.executable, "-c", FUZZ_CHILD, str(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == len(cases) == 72
    bad = [r for r in results if r not in ("refused", "identical", "works")]
    assert not bad, bad
    assert results.count("refused") >= 30, results


@pytest.fixture(scope="module")
def saved_knn(tmp_path_factory, data):
    """A saved ItemKNN: its neighbour CSR is an index structure like seen_*."""
    small = data.select_users(data.user_map.ids[:60])
    model = fk.ItemKNN(max_neighbours=30).fit(small)
    path = tmp_path_factory.mktemp("knn") / "item_knn.fk"
    model.save(path)
    return {"item_knn": (path, model)}


KNN_CASES = {
    "neighbour index out of range": (
        lambda a: a["item_neighbour_indices_"].__setitem__(3, 10**6),
        "array 'item_neighbour_indices_': expected valid positions in [0, ",
    ),
    "neighbour offsets past the end": (
        lambda a: a["item_neighbour_indptr_"].__setitem__(-1, 10**9),
        "array 'item_neighbour_indptr_': expected non-decreasing offsets from 0 to",
    ),
    "neighbour offsets of the wrong length": (
        lambda a: _set(a, "item_neighbour_indptr_", a["item_neighbour_indptr_"][:-5]),
        "array 'item_neighbour_indptr_': expected ",
    ),
    "fewer similarities than indices": (
        lambda a: _set(a, "item_neighbour_sims_", a["item_neighbour_sims_"][:-1]),
        "array 'item_neighbour_sims_': expected ",
    ),
    "NaN similarity": (
        lambda a: a["item_neighbour_sims_"].__setitem__(0, np.nan),
        "array 'item_neighbour_sims_': expected finite values",
    ),
}


@pytest.mark.parametrize("case", sorted(KNN_CASES))
def test_neighbour_csr_is_checked(model_files, saved_knn, tmp_path, case):
    edit, message = KNN_CASES[case]
    path = _edited(model_files, saved_knn, tmp_path, name="item_knn", array_edit=edit)
    with pytest.raises(ModelFormatError) as info:
        fk.load(path)
    assert message in str(info.value), str(info.value)
    # the untouched file loads and predicts as the model it came from
    original, model = saved_knn["item_knn"]
    loaded = fk.load(original)
    users, items = model.user_map_.ids[:5], model.item_map_.ids[:5]
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
