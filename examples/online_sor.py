"""Online tuning of SOR's relaxation parameter over a stream of linear systems.

Each arriving system is a 2-D Poisson problem on an n x n grid with a diagonal shift s,
(L + s I) x = b, so the spectral radius of its Jacobi iteration matrix is
rho = 4 cos(pi / (n + 1)) / (4 + s), and the best relaxation parameter of SOR depends on it
(2 / (1 + sqrt(1 - rho^2)) for this consistently ordered matrix). `OnlineTuner` reads rho as
the instance's feature, picks omega, and learns from the iterations SOR took.

    python examples/online_sor.py
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg, sparse

import hyperlaw as hl

OMEGA = hl.Float(1.0, 1.95)
RHO_RANGE = (0.3, 1.0)


def poisson_system(n: int, shift: float, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """(A, b): the shifted 5-point Laplacian on an n x n grid (dense) and a random b."""
    lap = sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n))
    eye = sparse.identity(n)
    a = (sparse.kron(lap, eye) + sparse.kron(eye, lap)).toarray() + shift * np.eye(n * n)
    return a, rng.standard_normal(n * n)


def jacobi_radius(n: int, shift: float) -> float:
    """The spectral radius of I - D^-1 A for `poisson_system(n, shift)`."""
    return 4.0 * math.cos(math.pi / (n + 1)) / (4.0 + shift)


def sor_iterations(a: np.ndarray, b: np.ndarray, omega: float, tol: float = 1e-8,
                   maxiter: int = 1000) -> int:
    """Iterations SOR with relaxation `omega` takes to reduce the residual by `tol`, from
    x = 0 (`maxiter` when it does not get there)."""
    m = np.diag(np.diag(a)) / omega + np.tril(a, -1)
    x, r = np.zeros_like(b), b.copy()
    target = tol * float(np.linalg.norm(b))
    for k in range(1, maxiter + 1):
        x += linalg.solve_triangular(m, r, lower=True, check_finite=False)
        r = b - a @ x
        if float(np.linalg.norm(r)) <= target:
            return k
    return maxiter


def stream(n_systems: int, n: int, seed: int) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """`n_systems` shifted Poisson systems, shifts log-uniform in [1e-3, 4]: (rho, A, b)."""
    rng = np.random.default_rng(seed)
    out = []
    for shift in 10 ** rng.uniform(-3.0, math.log10(4.0), n_systems):
        a, b = poisson_system(n, float(shift), rng)
        out.append((jacobi_radius(n, float(shift)), a, b))
    return out


def main(n_systems: int = 100, n: int = 12, seed: int = 0) -> hl.online.OnlineTuner:
    tuner = hl.online.OnlineTuner(OMEGA, features={"rho": RHO_RANGE}, seed=seed)
    for rho, a, b in stream(n_systems, n, seed):
        omega = tuner.suggest({"rho": rho})
        tuner.observe(sor_iterations(a, b, omega))
    print(f"{n_systems} systems solved in {tuner.cumulative_cost:.0f} SOR iterations")
    return tuner


if __name__ == "__main__":
    main()
