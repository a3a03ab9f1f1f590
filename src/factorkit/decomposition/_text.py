"""Topic modelling: a small tf-idf vectorizer, a shipped corpus, and NMF topics.

The vectorizer is built in (about 60 lines) so that topic models need no scikit-learn:
lower-cased word tokens of two or more characters, an English stop-word list, the
``max_features`` most frequent terms, smoothed idf ``ln((1 + n) / (1 + df)) + 1`` and
l2-normalised rows, scikit-learn's ``TfidfVectorizer`` defaults.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from factorkit._lazy import pandas as pd
from factorkit._validation import Interval, NoneOr, Options, check
from factorkit.decomposition._nmf import NMF
from factorkit.exceptions import ConvergenceWarning, DataError

__all__ = ["ENGLISH_STOP_WORDS", "TfidfVectorizer", "Topics", "movie_documents", "topics"]

# fmt: off
ENGLISH_STOP_WORDS = frozenset([
     "a", "about", "above", "after", "again", "against", "all", "almost", "also", "am", "an",
     "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below",
     "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down",
     "during", "each", "either", "else", "ever", "every", "few", "for", "from", "further", "get",
     "got", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him",
     "himself", "his", "how", "however", "i", "if", "in", "into", "is", "it", "its", "itself",
     "just", "least", "less", "like", "made", "make", "many", "may", "me", "might", "more",
     "most", "much", "must", "my", "myself", "neither", "no", "nor", "not", "now", "of", "off",
     "often", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over",
     "own", "per", "rather", "same", "she", "should", "since", "so", "some", "still", "such",
     "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these",
     "they", "this", "those", "though", "through", "thus", "to", "too", "under", "until", "up",
     "upon", "us", "very", "was", "we", "were", "what", "when", "where", "whether", "which",
     "while", "who", "whom", "whose", "why", "will", "with", "within", "without", "would", "yet",
     "you", "your", "yours", "yourself", "yourselves",
])
# fmt: on
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class TfidfVectorizer:
    """Documents -> l2-normalised tf-idf rows (scipy.sparse CSR, float32).

    Parameters
    ----------
    max_features : int or None, default=None
        Keep the most frequent terms over the corpus (ties broken alphabetically).
    stop_words : {"english", None}, default=None
    min_df : int, default=1
        Drop terms in fewer documents.

    Examples
    --------
    >>> from factorkit.decomposition import TfidfVectorizer
    >>> vec = TfidfVectorizer(stop_words="english")
    >>> X = vec.fit_transform(["the cat sat", "the dog sat", "a cat and a dog"])
    >>> vec.vocabulary_
    ['cat', 'dog', 'sat']
    >>> X.shape
    (3, 3)
    """

    def __init__(self, max_features: int | None = None, stop_words: str | None = None,
                 min_df: int = 1):  # fmt: skip
        self.max_features = max_features
        self.stop_words = stop_words
        self.min_df = min_df

    def _tokens(self, doc: str) -> list[str]:
        words = _TOKEN.findall(doc.lower())
        if self.stop_words == "english":
            words = [w for w in words if w not in ENGLISH_STOP_WORDS]
        return words

    def fit_transform(self, documents: Iterable[str]) -> sp.csr_matrix:
        """Learn the vocabulary and idf, return the tf-idf matrix (documents x terms)."""
        owner = "TfidfVectorizer"
        check(self.max_features, NoneOr(Interval(int, 1)), "max_features", owner)
        check(self.stop_words, NoneOr(Options(("english",))), "stop_words", owner)
        check(self.min_df, Interval(int, 1), "min_df", owner)
        docs = _as_documents(documents)
        tokens = [self._tokens(d) for d in docs]
        total, df = Counter(), Counter()
        for words in tokens:
            total.update(words)
            df.update(set(words))
        terms = [t for t in total if df[t] >= self.min_df]
        if not terms:
            raise DataError(
                f"{owner}: the documents have no term left (after stop words and min_df="
                f"{self.min_df}); pass documents with words of two or more letters."
            )
        terms.sort(key=lambda t: (-total[t], t))
        if self.max_features is not None:
            terms = terms[: self.max_features]
        self.vocabulary_ = sorted(terms)
        n = len(docs)
        dfs = np.array([df[t] for t in self.vocabulary_], dtype=np.float64)
        self.idf_ = np.log((1 + n) / (1 + dfs)) + 1.0
        return self._matrix(tokens)

    def transform(self, documents: Iterable[str]) -> sp.csr_matrix:
        """tf-idf rows of new documents over the fitted vocabulary."""
        return self._matrix([self._tokens(d) for d in _as_documents(documents)])

    def _matrix(self, tokens: list[list[str]]) -> sp.csr_matrix:
        index = {t: j for j, t in enumerate(self.vocabulary_)}
        indptr, indices, data = [0], [], []
        for words in tokens:
            counts = Counter(index[w] for w in words if w in index)
            cols = sorted(counts)
            indices.extend(cols)
            data.extend(counts[c] * self.idf_[c] for c in cols)
            indptr.append(len(indices))
        X = sp.csr_matrix(
            (np.array(data, dtype=np.float64), np.array(indices, dtype=np.int64), indptr),
            shape=(len(tokens), len(self.vocabulary_)),
        )
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ X, dtype=np.float32)


def _as_documents(documents: Any) -> list[str]:
    if isinstance(documents, str):
        raise DataError(
            "documents must be a list of strings, one per document; got a single string. "
            "Wrap it in a list."
        )
    docs = list(documents)
    bad = [i for i, d in enumerate(docs) if not isinstance(d, str)]
    if bad:
        raise DataError(
            f"documents must all be strings; document {bad[0]} is {type(docs[bad[0]]).__name__}."
        )
    if not docs:
        raise DataError("documents is empty; pass at least one document.")
    return docs


def movie_documents() -> pd.DataFrame:
    """One document per movie of the shipped MovieLens latest-small data: its genres and
    every tag users gave it, space-separated.

    Columns ``movieId``, ``title``, ``text``. MovieLens is (c) GroupLens, University of
    Minnesota, for research use with citation (F. M. Harper and J. A. Konstan, 2015, ACM
    TiiS 5(4)), non-commercial; redistribution under the same terms (see the shipped
    ``README.txt``).
    """
    root = resources.files("factorkit.data").joinpath("resources").joinpath("ml-latest-small")
    with root.joinpath("movies.csv").open("rb") as f:
        movies = pd.read_csv(f)
    with root.joinpath("tags.csv").open("rb") as f:
        tags = pd.read_csv(f)
    tag_text = tags.groupby("movieId")["tag"].agg(lambda s: " ".join(map(str, s)))
    genres = movies["genres"].str.replace("(no genres listed)", "", regex=False)
    genres = genres.str.replace("|", " ", regex=False).str.replace("-", "_", regex=False)
    text = genres + " " + movies["movieId"].map(tag_text).fillna("")
    return pd.DataFrame({"movieId": movies["movieId"], "title": movies["title"], "text": text})


def read_documents(path: str | Path) -> list[str]:
    """Documents from a text file (one per non-empty line) or a folder of ``.txt`` files
    (one per file, in name order)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DataError(f"{path}: folder has no .txt file; one document per .txt file.")
        return [f.read_text(errors="replace") for f in files]
    if not path.is_file():
        raise DataError(
            f"{path}: no such file or folder; pass a .txt file (one document per line), a "
            "folder of .txt files, or 'movielens-small'."
        )
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]


@dataclass
class Topics:
    """An NMF topic model: ``top_words[t]`` lists topic t's words, strongest first;
    ``document_topics`` is the (documents x topics) weight matrix."""

    vocabulary: list[str]
    components: np.ndarray
    document_topics: np.ndarray
    top_words: list[list[str]]
    model: NMF

    def __str__(self) -> str:
        return "\n".join(
            f"topic {t:>2}: {' '.join(words)}" for t, words in enumerate(self.top_words)
        )

    def document_frame(self, names: Any = None) -> pd.DataFrame:
        """Document-topic weights as a DataFrame: a ``document`` column (``names``, or
        0, 1, ...) and one ``topic_<t>`` column per topic."""
        W = self.document_topics
        frame = pd.DataFrame(W, columns=[f"topic_{t}" for t in range(W.shape[1])])
        frame.insert(0, "document", np.arange(len(W)) if names is None else list(names))
        return frame


def topics(
    documents: Iterable[str],
    n_topics: int = 10,
    *,
    max_features: int = 1000,
    top: int = 10,
    random_state: Any = 0,
    max_iter: int = 200,
) -> Topics:
    """Documents -> tf-idf (English stop words, ``max_features`` terms) -> NMF topics.

    Examples
    --------
    >>> from factorkit.decomposition import topics
    >>> docs = ["cats purr and meow", "dogs bark", "cats meow", "dogs bark and growl"]
    >>> model = topics(docs, n_topics=2, top=2)
    >>> sorted(sorted(words) for words in model.top_words)
    [['bark', 'dogs'], ['cats', 'meow']]
    """
    check(n_topics, Interval(int, 1), "n_topics", "topics")
    check(top, Interval(int, 1), "top", "topics")
    vec = TfidfVectorizer(max_features=max_features, stop_words="english")
    X = vec.fit_transform(documents)
    nmf = NMF(n_topics, init="nndsvd", max_iter=max_iter, tol=1e-4, random_state=random_state)
    with warnings.catch_warnings():  # a topic model stops early on purpose (max_iter)
        warnings.simplefilter("ignore", ConvergenceWarning)
        W = nmf.fit_transform(X)
    H = nmf.components_
    words = np.asarray(vec.vocabulary_)
    top_words = [[str(w) for w in words[np.argsort(-h, kind="stable")[:top]]] for h in H]
    return Topics(vec.vocabulary_, H, W, top_words, nmf)
