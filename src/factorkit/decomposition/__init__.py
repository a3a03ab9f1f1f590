"""Low-rank modelling of any matrix: ndarray or scipy.sparse in and out, scikit-learn style.

- :class:`TruncatedSVD`, :class:`PCA` and :func:`randomized_svd`: rank-k SVD of dense or
  sparse data, with optional imputation of a missing-entry marker;
- :class:`NMF` and :func:`non_negative_factorization`: non-negative factorization, also
  with missing entries left out of the loss;
- :func:`factorize`: a small dense matrix with unknown entries -> (U, V, R_hat);
- :func:`low_rank`: keep a matrix (or an image) at a rank, energy or maximum error, with
  a compression report;
- :class:`TfidfVectorizer`, :func:`movie_documents` and :func:`topics`: topic modelling.
"""

from factorkit.decomposition._compress import compress
from factorkit.decomposition._factorize import factorize
from factorkit.decomposition._io import read_image, read_matrix, write_matrix
from factorkit.decomposition._low_rank import LowRank, LowRankReport, low_rank, rank_sweep
from factorkit.decomposition._nmf import NMF, non_negative_factorization
from factorkit.decomposition._svd import PCA, TruncatedSVD, randomized_svd
from factorkit.decomposition._text import (
    ENGLISH_STOP_WORDS,
    TfidfVectorizer,
    Topics,
    movie_documents,
    read_documents,
    topics,
)

__all__ = [
    "ENGLISH_STOP_WORDS",
    "NMF",
    "PCA",
    "LowRank",
    "LowRankReport",
    "TfidfVectorizer",
    "Topics",
    "TruncatedSVD",
    "compress",
    "factorize",
    "low_rank",
    "movie_documents",
    "non_negative_factorization",
    "randomized_svd",
    "rank_sweep",
    "read_documents",
    "read_image",
    "read_matrix",
    "topics",
    "write_matrix",
]
