import numpy as np
import pytest

import factorkit as fk
from factorkit.decomposition import (
    TfidfVectorizer,
    compress,
    movie_documents,
    read_matrix,
    topics,
    write_matrix,
)
from factorkit.exceptions import DataError


def test_weight_files_roundtrip(tmp_path):
    W = np.random.default_rng(0).normal(size=(20, 12)).astype(np.float32)
    np.save(tmp_path / "w.npy", W)
    np.savez(tmp_path / "w.npz", weight=W)
    write_matrix(tmp_path / "w.safetensors", {"layer.weight": W, "bias": W[0]})
    for name in ("w.npy", "w.npz"):
        np.testing.assert_array_equal(read_matrix(tmp_path / name), W)
    got = read_matrix(tmp_path / "w.safetensors", key="layer.weight")
    np.testing.assert_array_equal(got, W)
    with pytest.raises(DataError, match=r"holds 2 arrays .* name one with key="):
        read_matrix(tmp_path / "w.safetensors")
    with pytest.raises(DataError, match=r"has no array 'nope'; it holds layer\.weight, bias"):
        read_matrix(tmp_path / "w.safetensors", key="nope")


def test_compress_weight_file(tmp_path):
    rng = np.random.default_rng(1)
    W = (rng.normal(size=(64, 8)) @ rng.normal(size=(8, 48))).astype(np.float32)
    np.save(tmp_path / "w.npy", W)
    result = compress(
        tmp_path / "w.npy", energy=0.999, out=tmp_path / "c.npz", report=tmp_path / "r"
    )
    assert result.report.rank == 8
    with np.load(tmp_path / "c.npz") as z:
        np.testing.assert_allclose(z["left"] @ z["right"], W, atol=1e-3)
    text = (tmp_path / "r" / "report.md").read_text()
    assert "| rank | storage ratio | relative error |" in text


def test_image_read_errors(tmp_path):
    pytest.importorskip("PIL")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"bad\.png: not a readable image"):
        read_matrix(bad)
    with pytest.raises(DataError, match=r"unknown file type '\.csv'"):
        (tmp_path / "x.csv").write_text("1,2")
        read_matrix(tmp_path / "x.csv")
    with pytest.raises(DataError, match="no such file"):
        read_matrix(tmp_path / "missing.npy")


def test_compress_image_file(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    yy, xx = np.mgrid[0:48, 0:64]
    img = (127 + 120 * np.sin(xx / 8.0) * np.cos(yy / 6.0)).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "g.png")
    result = compress(tmp_path / "g.png", rank=4, out=tmp_path / "out.png")
    back = np.asarray(Image.open(tmp_path / "out.png"))
    np.testing.assert_array_equal(back, result.reconstruct())
    assert result.report.psnr > 25


def test_tfidf_matches_the_textbook_formula():
    docs = ["apple banana apple", "banana cherry", "the cherry"]
    vec = TfidfVectorizer(stop_words="english")
    X = vec.fit_transform(docs).toarray()
    assert vec.vocabulary_ == ["apple", "banana", "cherry"]
    idf = np.log(4 / (1 + np.array([1, 2, 2]))) + 1
    row = np.array([2, 1, 0]) * idf
    np.testing.assert_allclose(X[0], row / np.linalg.norm(row), rtol=1e-6)
    assert TfidfVectorizer(max_features=1).fit_transform(docs).shape == (3, 1)
    with pytest.raises(DataError, match="got a single string"):
        vec.fit_transform("one document")


def test_movie_topics_on_the_shipped_corpus():
    docs = movie_documents()
    assert len(docs) == 9742
    model = topics(docs["text"], n_topics=6, max_iter=50)
    assert model.document_topics.shape == (9742, 6)
    assert len(model.vocabulary) == 1000
    words = {w for ws in model.top_words for w in ws}
    assert {"horror", "comedy", "documentary"} <= words
    # a horror film loads most on the topic whose top word is horror
    horror = next(t for t, ws in enumerate(model.top_words) if "horror" in ws[:3])
    row = docs.index[docs["title"] == "Shining, The (1980)"][0]
    assert np.argmax(model.document_topics[row]) == horror


def test_public_names():
    assert fk.decomposition.NMF is not None and callable(fk.low_rank) and callable(fk.factorize)
