"""Low-rank modelling of any matrix with factorkit (generates docs/low-rank.md).

Run: python docs/examples/low_rank.py             # prints every section's output
     python docs/examples/low_rank.py --write-md  # also rewrites docs/low-rank.md

Each section's code below is executed as written and its printed output is pasted under
it in the page, so the page shows real output.
"""

from __future__ import annotations

import contextlib
import io
import sys
import textwrap
import time
from pathlib import Path

INTRO = """\
# Low-rank modelling of any matrix

`factorkit.decomposition` factorizes any dense or sparse matrix, not only ratings:
truncated SVD and PCA (randomized, Lanczos or exact), NMF (coordinate descent or
multiplicative updates, Frobenius or KL loss, dense, sparse or with missing entries left
out of the loss), one-call factorization of small matrices, topic models and
compression reports. It follows scikit-learn's estimator shape (`fit`, `transform`,
`fit_transform`, `inverse_transform`, `components_`, ...), works in float32 by default,
and needs only numpy, scipy and numba. Speed and accuracy against scikit-learn and SciPy
are in [benchmarks.md](benchmarks.md#low-rank-modelling-issue-12).

Every output below was printed by `python docs/examples/low_rank.py` (the page is
regenerated with `--write-md`); run it to reproduce them.
"""

SECTIONS = [
    (
        "1. A small rating matrix in one call",
        "Zeros mark unknown ratings; `fk.factorize` fits two factors on the known entries "
        "only (alternating least squares) and fills in the rest.",
        """
import numpy as np
import factorkit as fk

R = np.array([[5, 0, 4], [4, 2, 0], [0, 1, 2]])
U, V, R_hat = fk.factorize(R, factors=2, missing=0)
print(np.round(R_hat, 2))
""",
    ),
    (
        "2. Watching the loss as it trains",
        "`progress=True` prints the loss (squared error on the known entries plus the "
        "penalty) and the RMSE each epoch; `method='sgd'` is the classic stochastic "
        "gradient version. `missing=np.nan` works the same way with NaN markers.",
        """
R = np.array([
    [5, 4, 0, 0, 0, 5],
    [0, 0, 4, 5, 4, 0],
    [4, 5, 0, 0, 0, 0],
    [0, 0, 3, 0, 5, 0],
    [2, 0, 0, 3, 0, 1],
])
U, V, R_hat = fk.factorize(R, factors=2, missing=0, epochs=8, progress=True)
print(np.round(R_hat, 1))
""",
    ),
    (
        "3. The quick baseline: row means + truncated SVD",
        "Impute each row's mean for the unknown entries, keep the rank-k SVD (ARPACK, as "
        "`scipy.sparse.linalg.svds`), reconstruct. A sparse matrix stays sparse: the "
        "imputed matrix is handled as sparse-plus-rank-one.",
        """
from factorkit.decomposition import TruncatedSVD

svd = TruncatedSVD(2, algorithm="lanczos", missing_values=0, impute="row", random_state=0)
Z = svd.fit_transform(R)
print(np.round(svd.inverse_transform(Z), 2))
print("singular values:", np.round(svd.singular_values_, 3))
print(f"variance explained by 2 components: {svd.explained_variance_ratio_.sum():.1%}")
""",
    ),
    (
        "4. scikit-learn's TruncatedSVD workflow on a 1000 x 5000 sparse matrix",
        "",
        """
import scipy.sparse as sp

X = sp.random(1000, 5000, density=0.01, format="csr", random_state=42, dtype=np.float32)
svd = TruncatedSVD(factors=50, n_iter=7, random_state=42)
start = time.perf_counter()
Z = svd.fit_transform(X)
print(f"fit_transform: {Z.shape} {Z.dtype}")
print(f"explained variance ratio (50 components): {svd.explained_variance_ratio_.sum():.4f}")
print("first singular values:", np.round(svd.singular_values_[:5], 3))
X_back = svd.inverse_transform(Z)
err = np.linalg.norm(X.toarray() - X_back) / sp.linalg.norm(X)
print(f"relative Frobenius reconstruction error: {err:.4f}")
""",
    ),
    (
        "5. PCA",
        "Centred (implicitly for sparse input), with optional whitening.",
        """
from factorkit.decomposition import PCA

rng = np.random.default_rng(0)
X = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 40)) + 0.1 * rng.normal(size=(500, 40))
pca = PCA(5).fit(X)
print("explained variance ratio:", np.round(pca.explained_variance_ratio_, 4))
""",
    ),
    (
        "6. A topic model on the shipped MovieLens tags",
        "One document per movie (its genres and every tag users gave it) from the "
        "MovieLens latest-small data that ships with factorkit (GroupLens, University of "
        "Minnesota: research and non-commercial use, cite Harper & Konstan 2015; see "
        "`src/factorkit/data/resources/ml-latest-small/README.txt`). Documents -> tf-idf "
        "(factorkit's built-in vectorizer: 1000 terms, English stop words) -> NMF.",
        """
from factorkit.decomposition import movie_documents, topics

docs = movie_documents()
model = topics(docs["text"], n_topics=8, max_features=1000, top=10)
print(len(docs), "documents,", len(model.vocabulary), "terms")
print(model)
W = model.document_topics
weights = W / np.maximum(W.sum(axis=1, keepdims=True), 1e-12)  # shares per document
for title in ["Toy Story (1995)", "Shining, The (1980)", "Pulp Fiction (1994)"]:
    row = docs.index[docs["title"] == title][0]
    print(f"{title:<22}", " ".join(f"{w:.2f}" for w in weights[row]))

""",
    ),
    (
        "7. Compressing an image",
        "Grace Hopper's portrait (it ships with matplotlib), each RGB channel kept at the "
        "rank that holds 99% of the energy, then at fixed ranks. The storage ratio is "
        "k(m+n)/(mn) per channel.",
        """
import matplotlib.cbook
from factorkit.decomposition import read_image

image = read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
print("image:", image.shape, image.dtype)
print(fk.low_rank(image, energy=0.99).report)
for report in fk.decomposition.rank_sweep(image, [10, 50, 100]):  # one SVD for all ranks
    print(report)
""",
    ),
    (
        "8. Compressing a weight matrix",
        "A 512 x 512 float32 layer saved as .npy (the same call reads .npz and "
        ".safetensors); `compress` keeps it at a maximum relative error and writes the "
        "factors (`left` @ `right`) and a report folder (a table over ranks, and "
        "figures when matplotlib is installed).",
        """
import tempfile
from factorkit.decomposition import compress

rng = np.random.default_rng(0)
n = 512
spectrum = (np.arange(1, n + 1) ** -1.0).astype(np.float32)
Q1, _ = np.linalg.qr(rng.normal(size=(n, n)).astype(np.float32))
Q2, _ = np.linalg.qr(rng.normal(size=(n, n)).astype(np.float32))
W = (Q1 * spectrum) @ Q2.T
folder = Path(tempfile.mkdtemp())
np.save(folder / "layer.npy", W)
result = compress(folder / "layer.npy", max_error=0.2, out=folder / "layer.npz",
                  report=folder / "report")
print(result.report)
print((folder / "report" / "report.md").read_text().split("\\n\\n")[2])
""",
    ),
    (
        "9. Denoising",
        "A rank-5 matrix plus noise of the same total size as a tenth of the signal: the "
        "rank-5 truncated SVD removes most of the noise.",
        """
rng = np.random.default_rng(1)
truth = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 200))
noisy = truth + 0.1 * np.linalg.norm(truth) / np.sqrt(truth.size) * rng.normal(size=truth.shape)
denoised = fk.low_rank(noisy, rank=5).reconstruct()
rel = lambda A: np.linalg.norm(A - truth) / np.linalg.norm(truth)
print(f"error of the noisy matrix: {rel(noisy):.4f}, after rank-5 SVD: {rel(denoised):.4f}")
""",
    ),
    (
        "10. NMF with missing entries",
        "NaN entries (or `fit(X, mask=...)`) are left out of the loss, not treated as "
        "zeros: here half of a rank-5 non-negative 500 x 400 matrix is hidden and recovered.",
        """
from factorkit.decomposition import NMF

rng = np.random.default_rng(1)
X = rng.random((500, 5)) @ rng.random((5, 400))
hidden = rng.random(X.shape) < 0.5
model = NMF(5, max_iter=100, tol=0, random_state=0)
W = model.fit_transform(np.where(hidden, np.nan, X))
X_hat = W @ model.components_
rmse = np.sqrt(np.mean((X_hat[hidden] - X[hidden]) ** 2))
print(f"RMSE on hidden entries: {rmse:.4f} ({rmse / X[hidden].std():.2%} of their std)")
zero = NMF(5, max_iter=100, tol=0, random_state=0)
X_zero = zero.fit_transform(np.where(hidden, 0.0, X)) @ zero.components_
rmse0 = np.sqrt(np.mean((X_zero[hidden] - X[hidden]) ** 2))
print(f"the same with hidden entries as zeros: {rmse0:.4f}")
""",
    ),
]


def run(write_md: bool) -> None:
    namespace: dict = {"Path": Path, "time": time}
    parts = [INTRO]
    for title, prose, code in SECTIONS:
        code = textwrap.dedent(code).strip("\n")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, title, "exec"), namespace)
        output = buffer.getvalue().rstrip("\n")
        print(f"## {title}\n{output}\n")
        parts.append(f"## {title}\n")
        if prose:
            parts.append(prose + "\n")
        parts.append(f"```python\n{code}\n```\n")
        parts.append(f"```\n{output}\n```\n")
    if write_md:
        page = Path(__file__).resolve().parents[1] / "low-rank.md"
        page.write_text("\n".join(parts))


if __name__ == "__main__":
    run("--write-md" in sys.argv[1:])
