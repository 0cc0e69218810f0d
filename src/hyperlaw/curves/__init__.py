"""Learning curves: parametric families and a Bayesian extrapolation of partial curves.

    >>> import hyperlaw as hl
    >>> p = hl.curves.extrapolate([1, 2, 3, 4], [0.9, 0.6, 0.5, 0.45], at_step=20)
    >>> low, high = p.quantiles([0.1, 0.9])

`extrapolate(..., model="pfn")` uses the LC-PFN network of `hyperlaw.curves.pfn` instead of
the parametric ensemble (the default, `model="auto"`).

Pure math: numpy and scipy, no I/O, no global state.
"""

from hyperlaw.curves import pfn
from hyperlaw.curves.ensemble import FITTED_FAMILIES, Prediction, extrapolate
from hyperlaw.curves.exponential import ExponentialFit, denoise, fit_exponential
from hyperlaw.curves.families import FAMILIES, Family

__all__ = ["FAMILIES", "FITTED_FAMILIES", "ExponentialFit", "Family", "Prediction", "denoise",
           "extrapolate", "fit_exponential", "pfn"]
