"""Linear algebra shared by the Gaussian-process models: one BLAS thread, the Cholesky
factorization of a kernel matrix and the Gaussian marginal likelihood."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_controller: Any = None


def single_threaded_blas() -> Any:
    """A context limiting BLAS to one thread: the matrices here are small, and threaded BLAS
    is many times slower on them when cores are shared with training processes."""
    global _controller
    if _controller is None:
        import scipy.linalg  # noqa: F401  (scipy ships its own BLAS: load it to be limited too)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def factor(k: np.ndarray, y: np.ndarray) -> tuple[tuple[np.ndarray, bool], np.ndarray]:
    """The lower Cholesky factor of `k` (as `scipy.linalg.cho_factor` gives it) and
    alpha = k^-1 y. Raises numpy.linalg.LinAlgError when `k` is not positive definite."""
    from scipy.linalg import cho_factor, cho_solve

    chol = cho_factor(k, lower=True, check_finite=False)
    return chol, cho_solve(chol, y, check_finite=False)


def triangular_inverse(lower: np.ndarray) -> np.ndarray:
    """The inverse of a lower Cholesky factor (what lies above its diagonal is ignored), lower
    triangular, in column-major order (as `lower_times` takes it without a copy). Raises
    numpy.linalg.LinAlgError when the factor is singular."""
    from scipy.linalg.lapack import dtrtri

    inverse, info = dtrtri(lower, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"dtrtri failed (info {info})")
    return np.asfortranarray(np.tril(inverse))


def lower_times(lower: np.ndarray, columns: np.ndarray, transposed: bool = False) -> np.ndarray:
    """lower @ columns (lower.T @ columns when `transposed`) for a lower triangular matrix: half
    the work of a full product. Column-major operands (the transpose of a row-major block of
    rows) go in without a copy."""
    from scipy.linalg.blas import dtrmm

    return dtrmm(1.0, lower, columns, side=0, lower=1, trans_a=int(transposed))


def gaussian_nll(k: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray] | None:
    """For y ~ N(0, k): the negative log marginal likelihood, alpha = k^-1 y and the lower
    triangle of k^-1 (zeros above), which the gradients in the kernel's hyperparameters need;
    None when `k` is not positive definite."""
    from scipy.linalg import cho_solve
    from scipy.linalg.lapack import dpotrf, dpotri

    chol, info = dpotrf(k, lower=1, clean=1)
    if info != 0:
        return None
    alpha = cho_solve((chol, True), y, check_finite=False)
    k_inv, info = dpotri(chol, lower=1)
    if info != 0:
        return None
    nll = (0.5 * float(y @ alpha) + float(np.log(np.diag(chol)).sum())
           + 0.5 * len(y) * math.log(2 * math.pi))
    return nll, alpha, k_inv
