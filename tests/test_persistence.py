import hashlib
import json
import zipfile

import numpy as np
import pytest

import factorkit as fk
from factorkit.exceptions import ModelFormatError, NotFittedError


@pytest.fixture
def model_and_data():
    users = ["a", "a", "b", "b", "c", 7]
    items = [1, 2, 1, 3, 2, 3]
    data = fk.Interactions.from_arrays(users, items, [4.0, 3.0, 5.0, 2.0, 1.0, 3.5])
    return fk.BaselineOnly(epochs=3).fit(data), data


def test_round_trip_identical_predictions_and_mixed_ids(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.fk"
    model.save(path)
    loaded = fk.load(path)
    assert loaded.user_map_.ids.tolist() == [7, "a", "b", "c"]  # numbers sort first
    users, items = ["a", "b", 7, "zz"], [3, 2, 1, 1]
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    assert loaded.get_params() == model.get_params()
    assert list(loaded.history_["epoch"]) == [1, 2, 3]


def test_no_pickle_in_file(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.fk"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            header = z.read(name)[:128]
            assert b"'descr': '|O'" not in header, f"{name} holds Python objects"


def test_truncated_file(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.fk"
    model.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFormatError, match=r"not a factorkit model file .* truncated"):
        fk.load(path)


def test_corrupted_array(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.fk"
    model.save(path)
    # flip bytes inside the stored item_bias_ array (uncompressed zip member)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("item_bias_.npy")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 4
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError, match=r"(checksum mismatch|unreadable|damaged)"):
        fk.load(path)


def test_foreign_npz(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.arange(3))
    with pytest.raises(ModelFormatError, match=r"an \.npz archive but not a factorkit model"):
        fk.load(path)


def test_foreign_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ModelFormatError, match="not a factorkit model file"):
        fk.load(path)


def test_unsupported_version(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.fk"
    model.save(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    meta["format_version"] = 99
    meta_bytes = json.dumps(meta).encode()
    import hashlib

    arrays["__meta__"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    arrays["__meta_sha256__"] = np.frombuffer(
        hashlib.sha256(meta_bytes).hexdigest().encode(), dtype=np.uint8
    )
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ModelFormatError, match="model format version 99 is not supported"):
        fk.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file at"):
        fk.load(tmp_path / "nope.fk")


def test_save_unfitted(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        fk.BaselineOnly().save(tmp_path / "m.fk")


def _rewrite(path, edit):
    """Rewrite a saved model's archive through ``edit(arrays, meta)`` (checksums redone)."""
    import hashlib

    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    edit(arrays, meta)
    meta_bytes = json.dumps(meta).encode()
    arrays["__meta__"] = np.frombuffer(meta_bytes, dtype=np.uint8)
    arrays["__meta_sha256__"] = np.frombuffer(
        hashlib.sha256(meta_bytes).hexdigest().encode(), dtype=np.uint8
    )
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def test_files_from_before_the_state_protocol_load(model_and_data, tmp_path):
    """Version-1 files written before seen_values_ existed load, predict identically and
    accept partial_fit (the missing values count as 1.0)."""
    model, data = model_and_data
    path = tmp_path / "m.fk"
    model.save(path)

    def drop_seen_values(arrays, meta):
        del arrays["seen_values_"], meta["arrays"]["seen_values_"]

    _rewrite(path, drop_seen_values)
    loaded = fk.load(path)
    users, items = ["a", "b", 7], [3, 2, 1]
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    np.testing.assert_array_equal(loaded.seen_values_, np.ones(len(data), np.float32))
    loaded.partial_fit(fk.Interactions.from_arrays(["a"], [3], [1.0]))
    assert loaded.predict(["a"], [3])[0] < model.predict(["a"], [3])[0]


def test_state_protocol_drives_the_file(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.fk"
    model.save(path)
    meta = fk.persistence.read_metadata(path)
    state = model.get_state()
    arrays = {k for k, v in state.items() if isinstance(v, np.ndarray)}
    stored = {k for k in meta["arrays"] if not k.endswith(".offsets")}  # packed strings
    assert stored == arrays  # ids included, nothing else
    assert set(meta["scalars"]) == set(state) - arrays - {"history_"}
    assert meta["history"] == state["history_"]


def test_a_state_the_class_rejects_is_a_format_error(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / "m.fk"
    model.save(path)

    def truncate_seen_values(arrays, meta):
        arrays["seen_values_"] = arrays["seen_values_"][:2]
        info = meta["arrays"]["seen_values_"]
        info["shape"] = [2]
        info["sha256"] = hashlib.sha256(arrays["seen_values_"].tobytes()).hexdigest()

    _rewrite(path, truncate_seen_values)
    # caught by the file checks before the class's own set_state check sees it
    with pytest.raises(
        ModelFormatError,
        match=r"array 'seen_indptr_': expected non-decreasing offsets from 0 to 2 \(the length "
        r"of 'seen_values_'\)",
    ):
        fk.load(path)
