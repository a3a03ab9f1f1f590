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

from factorkit.decomposition._factorize import factorize
from factorkit.decomposition._low_rank import LowRank, LowRankReport, low_rank
from factorkit.decomposition._nmf import NMF, non_negative_factorization
from factorkit.decomposition._svd import PCA, TruncatedSVD, randomized_svd

__all__ = [
    "NMF",
    "PCA",
    "LowRank",
    "LowRankReport",
    "TruncatedSVD",
    "factorize",
    "low_rank",
    "non_negative_factorization",
    "randomized_svd",
]
