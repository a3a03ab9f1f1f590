"""HybridMF's ``loss="ials"``: the implicit-ALS objective (Hu, Koren & Volinsky 2008)
over HybridMF's id + feature representation, trained by alternating least squares.

With ``p_u = e_u + x_u W`` and ``q_i = d_i + y_i V`` (id embedding plus feature
embeddings, no biases), the objective is

    sum_{(u,i) in S} c_ui (1 - p_u . q_i)^2 + w0 sum_{(u,i) not in S} (p_u . q_i)^2
    + lam (sum_u |e_u|^2 + sum_i |d_i|^2) + lam_f (|W|^2 + |V|^2)

(``lam = regularization``, ``lam_f = feature_regularization``)

over the training users and items (``c_ui = 1 + alpha r_ui``, ``w0 = 1``; users and items
known only by their features are not cells of it, as the ranking losses never draw them
as negatives). With no features it is :class:`~factorkit.ImplicitALS`'s objective.

A half-step fixes the other side's effective vectors ``Y`` and minimises over one side's
id embeddings and feature embeddings ``W``. Written in the side's effective vectors ``P``
(``e_r = p_r - x_r W``) the objective is ``sum_r L_r(p_r) + lam |p_r - x_r W|^2 + lam_f
|W|^2``: the features are a prior centred on ``x_r W`` for each row's vector. Block
coordinate descent in ``(P, W)`` (rather than ``(E, W)``, whose blocks are coupled
through the whole data term and converge slowly) is:

1. every ``p_r`` with ``W`` fixed: the iALS row system with the prior as extra
   right-hand side, ``(A_r + lam I) p_r = b_r + lam x_r W``, by
   :func:`~factorkit.kernels.implicit_als.implicit_als_cg_rows` (``cg_steps`` warm-started
   conjugate-gradient steps per row, the Gram trick). The kernel's right-hand side is
   ``sum_j c_j y_j`` over the row's entries, so each row gets one pseudo-entry: a row of
   ``lam x_r W / w0`` appended to ``Y`` with confidence ``w0``, which adds exactly
   ``lam x_r W`` to ``b_r`` and ``(w0 - w0) = 0`` to ``A_r``;
2. ``W`` with ``P`` fixed: a ridge regression of the rows' vectors on their features,
   ``(lam X^T X + lam_f I) W = lam X^T P`` (block conjugate gradient, Jacobi
   preconditioned, warm-started).

A side without id embeddings (``user_identity=False`` / ``item_identity=False``) has
``p_r = x_r W`` only; its ``W`` minimises ``sum_r L_r(x_r W) + lam_f |W|^2`` directly by
preconditioned conjugate gradient, each Hessian product ``X^T A_r X D`` one pass over
the interactions (:func:`~factorkit.kernels.hybrid_als.ials_row_products`).
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from factorkit.kernels._jit import read_only
from factorkit.kernels.hybrid_als import ials_row_products
from factorkit.kernels.implicit_als import implicit_als_cg_rows, implicit_als_confidence
from factorkit.models._training import Trainer

__all__ = ["ALS_CG_STEPS", "ALSTrainer", "ials_confidence"]

#: conjugate-gradient steps per row and half-step for the vectors (ImplicitALS's default)
ALS_CG_STEPS = 3
#: block-CG steps at most for a side's feature embeddings per half-step (warm-started)
_FEATURE_CG_STEPS = 8
#: the unobserved cells' weight
_W0 = np.float32(1.0)


def ials_confidence(values: np.ndarray, alpha: float) -> np.ndarray:
    """``1 + alpha * r`` for ``r > 0``, 0 (not a positive) otherwise, as float32."""
    out = np.empty(len(values), dtype=np.float32)
    implicit_als_confidence(
        np.asarray(values, dtype=np.float32), np.float32(alpha), False, np.float32(1.0), out
    )
    return out


def _gram(fixed: np.ndarray) -> np.ndarray:
    """``w0 Y^T Y`` as float32, exactly symmetric (as ImplicitALS's)."""
    g = fixed.T @ fixed
    g = np.triu(g) + np.triu(g, 1).T
    return np.ascontiguousarray(g * _W0, dtype=np.float32)


class _Side:
    """One side's training rows: their positives (confidences) against the other side,
    their features, and the structures the half-step reuses every epoch."""

    def __init__(
        self, indptr: np.ndarray, indices: np.ndarray, conf: np.ndarray, x: sp.csr_matrix,
        n_fixed: int,
    ) -> None:  # fmt: skip
        keep = conf > 0  # stored non-positives are unobserved cells: drop them
        n = len(indptr) - 1
        rows = np.repeat(np.arange(n), np.diff(indptr))
        counts = np.bincount(rows[keep], minlength=n)
        self.n = n
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.indices = np.ascontiguousarray(indices[keep], dtype=np.int32)
        self.conf = np.ascontiguousarray(conf[keep], dtype=np.float32)
        # one pseudo-entry per row, at its end: index n_fixed + r, confidence w0
        nnz = len(self.indices)
        self.ext_indptr = self.indptr + np.arange(n + 1, dtype=np.int64)
        self.ext_indices = np.empty(nnz + n, dtype=np.int32)
        self.ext_conf = np.empty(nnz + n, dtype=np.float32)
        at = np.arange(nnz) + np.repeat(np.arange(n), counts)
        self.ext_indices[at] = self.indices
        self.ext_conf[at] = self.conf
        last = self.ext_indptr[1:] - 1
        self.ext_indices[last] = n_fixed + np.arange(n, dtype=np.int32)
        self.ext_conf[last] = _W0
        self.x = sp.csr_matrix(x, dtype=np.float64)  # the CG on W runs in float64
        self.xt = self.x.T.tocsr()
        self.x_sq = np.asarray(self.x.multiply(self.x).sum(axis=0), dtype=np.float64).ravel()
        self.xt_sq = self.x.multiply(self.x).T.tocsr()
        self.n_features = self.x.shape[1]


class ALSTrainer(Trainer):
    """Each epoch: the users' half-step against the fixed items, then the items'."""

    metric = "loss"
    diverge_hint = "regularization"

    def __init__(
        self, model, n_train_users: int, n_train_items: int, weights: np.ndarray | None,
        state_names: tuple[str, ...],
    ) -> None:  # fmt: skip
        super().__init__(model)
        self.state_names = state_names
        self.n_threads = model._n_threads
        self.nu, self.ni = n_train_users, n_train_items
        indptr = np.asarray(model.seen_indptr_[: n_train_users + 1], dtype=np.int64)
        items = np.asarray(model.seen_indices_, dtype=np.int32)
        conf = ials_confidence(model.seen_values_, float(model._setting("alpha")))
        if weights is not None:  # c = w c_ui; weight 0 makes an unobserved cell
            conf = (conf * weights).astype(np.float32)
        self.total = float(len(conf) if weights is None else weights.sum(dtype=np.float64))
        self.total = max(self.total, 1e-300)
        by_item = sp.csr_matrix((conf, items, indptr), shape=(self.nu, self.ni)).tocsc()
        self.users = _Side(indptr, items, conf, model._xu[: self.nu], self.ni)
        self.items = _Side(
            by_item.indptr.astype(np.int64), by_item.indices.astype(np.int32),
            by_item.data.astype(np.float32), model._xi[: self.ni], self.nu,
        )  # fmt: skip
        self.lam = float(model._setting("regularization"))
        self.lam_f = float(model._setting("feature_regularization"))
        self.lam_u = np.full(self.nu, self.lam, dtype=np.float32)
        self.lam_i = np.full(self.ni, self.lam, dtype=np.float32)
        self.val = None

    # ------------------------------------------------------------------ the half-steps
    def _vectors(self, ids: np.ndarray, feats: np.ndarray, side: _Side, n: int) -> np.ndarray:
        """The side's effective training vectors ``e + x W`` (float32, contiguous)."""
        out = ids[:n].copy()
        if side.n_features:
            out += np.asarray(side.x @ feats, dtype=np.float32)
        return np.ascontiguousarray(out)

    def _half_step(
        self, side: _Side, fixed: np.ndarray, ids: np.ndarray, feats: np.ndarray,
        identity: bool, lam_rows: np.ndarray,
    ) -> float:  # fmt: skip
        """Update one side's id embeddings ``ids`` (rows ``0 .. side.n``) and feature
        embeddings ``feats`` in place against ``fixed``; returns the data term
        ``sum_r L_r(p_r)`` at the side's new vectors."""
        gram = _gram(fixed)
        if not identity:
            return self._features_only(side, fixed, gram, feats)
        lam = self.lam
        prior = np.asarray(side.x @ feats, dtype=np.float32) if side.n_features else None
        p = ids[: side.n].copy()
        ext = np.empty((len(fixed) + side.n, fixed.shape[1]), dtype=np.float32)
        ext[: len(fixed)] = fixed
        if prior is None:
            ext[len(fixed) :] = 0.0
        else:
            p += prior
            ext[len(fixed) :] = prior * np.float32(lam / float(_W0))
        args = read_only(side.ext_indptr, side.ext_indices, side.ext_conf, ext, gram, lam_rows)
        obj = implicit_als_cg_rows(*args[:5], _W0, args[5], ALS_CG_STEPS, p)
        # the kernel's objective counts the pseudo-entries: c = w0 each, and the prior's
        # lam |p - s|^2 written as lam |p|^2 - 2 lam s.p (the lam |s|^2 term is missing)
        obj -= float(_W0) * side.n
        if prior is not None:
            s64 = prior.astype(np.float64)
            obj += lam * float(np.vdot(s64, s64))
            d = p.astype(np.float64) - s64
            obj -= lam * float(np.vdot(d, d))
            self._ridge(side, p, feats)
            p -= np.asarray(side.x @ feats, dtype=np.float32)
        else:
            obj -= lam * float(np.vdot(p.astype(np.float64), p))
        ids[: side.n] = p
        return obj

    def _ridge(self, side: _Side, p: np.ndarray, feats: np.ndarray) -> None:
        """``feats`` <- the ridge fit ``min_W lam |P - X W|^2 + lam_f |W|^2`` (block
        conjugate gradient, Jacobi preconditioned, warm-started from ``feats``)."""
        lam, lam_f = self.lam, self.lam_f
        w = feats.astype(np.float64)
        r = lam * (side.xt @ (p - side.x @ w)) - lam_f * w
        precond = np.maximum(lam * side.x_sq + lam_f, 1e-12)[:, None]
        self._pcg(w, r, precond, lambda d: lam * (side.xt @ (side.x @ d)) + lam_f * d)
        feats[:] = w

    def _features_only(
        self, side: _Side, fixed: np.ndarray, gram: np.ndarray, feats: np.ndarray
    ) -> float:
        """A side without id embeddings: ``min_W sum_r L_r(x_r W) + lam_f |W|^2`` by
        preconditioned CG; returns the data term at the new ``W``."""
        if not side.n_features:
            return self._data_term(
                side, fixed, gram, np.zeros((side.n, fixed.shape[1]), np.float32)
            )
        lam_f = self.lam_f
        n_threads = numba.get_num_threads()

        def hessian(d: np.ndarray) -> np.ndarray:
            z = np.ascontiguousarray(side.x @ d, dtype=np.float32)
            out = np.ascontiguousarray(z @ gram)
            ials_row_products(
                side.indptr, side.indices, side.conf, fixed, _W0, z, 0.0, out, n_threads
            )
            return side.xt @ out.astype(np.float64) + lam_f * d

        w = feats.astype(np.float64)
        p = np.ascontiguousarray(side.x @ w, dtype=np.float32)
        grad = np.ascontiguousarray(p @ gram)
        ials_row_products(side.indptr, side.indices, side.conf, fixed, _W0, p, 1.0, grad, n_threads)
        r = -(side.xt @ grad.astype(np.float64) + lam_f * w)
        # Jacobi: the diagonal of X^T A X, from diag(A_r) = diag(G) + sum_j (c_j - w0) y_j^2
        cw = sp.csr_matrix((side.conf - _W0, side.indices, side.indptr), shape=(side.n, len(fixed)))
        diag_rows = np.diag(gram)[None, :].astype(np.float64) + cw @ (fixed.astype(np.float64) ** 2)
        precond = np.maximum(side.xt_sq @ diag_rows + lam_f, 1e-12)
        self._pcg(w, r, precond, hessian)
        feats[:] = w
        p = np.ascontiguousarray(side.x @ w, dtype=np.float32)
        return self._data_term(side, fixed, gram, p)

    @staticmethod
    def _pcg(w: np.ndarray, r: np.ndarray, precond: np.ndarray, hessian) -> None:
        """Preconditioned conjugate gradient on the matrix ``w`` in place, from its
        residual ``r`` (minus the gradient)."""
        z = r / precond
        d = z.copy()
        rz = float(np.vdot(r, z))
        stop = 1e-12 * rz
        for _ in range(_FEATURE_CG_STEPS):
            if not rz > stop or rz == 0.0:
                break
            hd = hessian(d)
            dhd = float(np.vdot(d, hd))
            if not dhd > 0.0:
                break
            a = rz / dhd
            w += a * d
            r -= a * hd
            z = r / precond
            rz_new = float(np.vdot(r, z))
            d = z + (rz_new / rz) * d
            rz = rz_new

    def _data_term(self, side: _Side, fixed: np.ndarray, gram: np.ndarray, p: np.ndarray) -> float:
        """``sum_r L_r(p_r)`` exactly: the Gram part and one pass over the entries."""
        scratch = np.zeros_like(p)
        sparse = ials_row_products(
            side.indptr, side.indices, side.conf, fixed, _W0, p, 1.0, scratch,
            numba.get_num_threads(),
        )  # fmt: skip
        p64 = p.astype(np.float64)
        return sparse + float(np.sum((p64 @ gram.astype(np.float64)) * p64))

    # ------------------------------------------------------------------ the protocol
    def epoch(self, epoch: int) -> float:
        m = self.model
        q = self._vectors(m.item_id_factors_, m.feature_item_factors_, self.items, self.ni)
        self._half_step(
            self.users, q, m.user_id_factors_, m.feature_user_factors_, m.user_identity,
            self.lam_u,
        )  # fmt: skip
        p = self._vectors(m.user_id_factors_, m.feature_user_factors_, self.users, self.nu)
        data = self._half_step(
            self.items, p, m.item_id_factors_, m.feature_item_factors_, m.item_identity,
            self.lam_i,
        )  # fmt: skip
        penalty = 0.0
        for a, lam in (
            (m.user_id_factors_[: self.nu], self.lam), (m.item_id_factors_[: self.ni], self.lam),
            (m.feature_user_factors_, self.lam_f), (m.feature_item_factors_, self.lam_f),
        ):  # fmt: skip
            a64 = a.astype(np.float64)
            penalty += lam * float(np.vdot(a64, a64))
        return (data + penalty) / self.total

    def validate(self) -> float:
        # the ranking losses' validation score: this loss keeps its biases at zero
        return pairwise_validation_loss(self.model, self.val)

    def finalize(self) -> None:
        self.model._combine()


def fold_in_ials(model, pos: np.ndarray, r: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """A new user's vector ``offset + e`` for ``loss="ials"``: the training objective of
    one user, items fixed, solved exactly (``(A + lam I) p = b + lam offset``, with the
    Gram over the training items; a feature-only item the user names enters with its
    full confidence, as it is not in the Gram)."""
    c = ials_confidence(r, float(model._setting("alpha"))).astype(np.float64)
    keep = c > 0
    pos, c = pos[keep], c[keep]
    n_warm = len(model.item_map_) - int(model.n_cold_items_)
    gram = model._ials_gram()
    q = model.item_factors_[pos].astype(np.float64)
    w = c - np.where(pos < n_warm, float(_W0), 0.0)
    lam = float(model._setting("regularization"))
    a = gram + q.T @ (w[:, None] * q)
    a[np.diag_indices_from(a)] += lam
    return np.linalg.solve(a, q.T @ c + lam * offset).astype(np.float32)


def pairwise_validation_loss(model, val) -> float:
    """Mean ``-ln sigma(x_uij)`` of a HybridMF's combined vectors and biases over the
    validation triples ``val = (u, i, j)`` (NaN when there are none): the score every
    implicit-feedback loss reports on validation data."""
    model._combine()
    u, i, j = val
    if len(u) == 0:
        return float("nan")
    p = model.user_factors_[u].astype(np.float64)
    x = np.einsum("ij,ij->i", p, model.item_factors_[i] - model.item_factors_[j])
    x += model.item_bias_[i].astype(np.float64) - model.item_bias_[j]
    return float(np.mean(np.logaddexp(0.0, -x)))
