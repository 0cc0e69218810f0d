"""Gaussian-process Bayesian optimization: model, acquisition, acquisition optimizer."""

from hyperlaw.samplers.gp.sampler import GPSampler

__all__ = ["GPSampler"]
