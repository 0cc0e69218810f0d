"""Gaussian-process Bayesian optimization with log expected improvement."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np

from hyperlaw.history import History
from hyperlaw.history.observations import (
    COMPLETE,
    RUNNING,
    Observations,
    categorical_mask,
    int_levels,
    n_bins,
    observations,
    params_key,
)
from hyperlaw.models.acquisition import (
    fantasy_log_expected_improvement,
    fantasy_log_expected_improvement_with_grad,
    log_expected_improvement,
    log_expected_improvement_with_grad,
    log_probability_below,
    log_probability_below_with_grad,
)
from hyperlaw.models.ehvi import log_ehvi
from hyperlaw.models.gp import GaussianProcess, Hyper, fit_hyper, scaled_sq_dists, sq_dists
from hyperlaw.models.linalg import single_threaded_blas
from hyperlaw.models.optimizer import maximize
from hyperlaw.models.targets import Choice, fit_targets, target_candidates
from hyperlaw.models.warp import Fit, WarpedGP
from hyperlaw.pareto import improvement_boxes, pareto_mask
from hyperlaw.samplers.base import ReplicaSalt, Sampler
from hyperlaw.samplers.budgets import (
    TOP,
    Fidelity,
    MultiFidelity,
    check_multi_fidelity,
    fidelity,
    min_observations,
)
from hyperlaw.samplers.multiobjective import (
    chebyshev,
    feasible,
    is_constrained,
    normalize,
    objectives_of,
    random_weights,
    violation_of,
)
from hyperlaw.samplers.priors import SpacePrior, evidence_weight, pibo_weight, space_prior
from hyperlaw.samplers.sobol import ScrambledSobol
from hyperlaw.samplers.tpe import TPESampler
from hyperlaw.space import Space

#: the acquisition's pool: up to this many scrambled Sobol' points (a quarter as many from
#: 256 model points on) and an eighth as many perturbations of the incumbents. The first
#: release scored 2048 random points and 256 perturbations; halving that left the best log
#: acquisition found the same on the median suggestion. Halving again (from 1024) cut the
#: asking time on the noisy family by 9% in a full 20-task sitting (1.4% over all 20), and
#: every family's regret cell won before was won again (benchmarks/README.md): the pool only
#: picks where the local searches start
_POOL = 512
#: fantasy worlds averaged over when trials are running (quasi-random draws cover the
#: posterior evenly; the acquisition's cost grows only linearly with their number)
_FANTASY_WORLDS = 32
#: the worlds that score the pool of random candidates, whose best start the local searches:
#: the first 8 (of scrambled Sobol' points, an evenly spread subset of the 32)
_SCREEN_WORLDS = 8
#: numbers of objectives log EHVI handles (its boxes grow as n^(k - 1) for n front points;
#: with more objectives the GP falls back to ParEGO)
_EHVI_OBJECTIVES = (2, 3)
MultiObjective = Literal["auto", "ehvi", "parego"]


#: noisy expected improvement takes over from plain EI once the learned noise variance is
#: this fraction of the signal variance (noise sd above ~5% of the function's spread)
_NOISY_EI_MIN_NOISE = 3e-3
#: observed points (best posterior means) whose latent values noisy EI draws
_NOISY_EI_ROWS = 16
#: the largest number of jointly drawn values drawn by quasi-random (Sobol) points
_SOBOL_MAX_DIM = 32
#: the local searches of an acquisition averaged over fantasy worlds (noisy EI, or running
#: trials) stop at an iteration that gains less than this share of the log acquisition (plain
#: EI: `optimizer._FTOL`, 1e-4). The average is an estimate: its standard error at the point
#: chosen is a median 0.4-0.5 in log acquisition on hartmann-6d-noisy, 0.08-0.14 with 4 running
#: trials on four noise-free tasks (the log acquisition is about 5-9 in size): polishing it to
#: 1e-4 of its value (5e-4 to 9e-4) resolves the estimate's noise, not the improvement
_FANTASY_FTOL = 1e-3
#: an objective is taken for noise-free once this share of the better half of the complete
#: trials repeat the exact value of another at a configuration this far (in some unit-cube
#: coordinate) from it (`reveals_steps`). Over the histories of a full 10-seed sitting of
#: `quality.py` (both GPs' runs), the share crossed a third on 66-98% of the suggestions of
#: the four cross-validated classifiers and on none of a synthetic, BBOB, noisy or regression
#: task (at most 0.27 there, on Ackley-20's corners)
_STEP_SHARE = 1 / 3
_DISTINCT = 0.01
#: the steps rule applies from this many complete trials on; before, the fit learns its noise.
#: A smooth model spreads the first suggestions better, and a noise-free one refines later:
#: on `quality.py`'s four cross-validated classifiers, seeds 0-19, starting the rule at 50
#: trials instead of 10 took the mean normalized regret at 50 evaluations from 0.069 to 0.045
#: (Optuna's GP 0.078) and left it level at 200 (0.026; benchmarks/README.md)
_STEP_MIN_TRIALS = 50
#: while the values come in steps, a candidate closer than this many lengthscales (the
#: kernel's distance, on the warped inputs) to a tried or running configuration is not
#: proposed (`resolvable`). A cross-validated error can jump between neighbouring steps at
#: any change of a learning rate; fitted noise-free, such jumps between near-duplicates bend
#: the posterior mean below every observed value, and the search kept sampling there: on
#: `quality.py`'s gradient boosting, up to 110 of 200 evaluations within 0.4% of one
#: learning rate (benchmarks/README.md)
_RESOLUTION = 1e-3
#: models with warped inputs compete from this many complete trials on (two exponents per
#: input: fitted on fewer trials they cost regret at 50 evaluations on four synthetic tasks)
_WARP_MIN_TRIALS = 50
#: relative noise variances tried, in turn, for rows conditioned on as noise-free draws
_DRAW_JITTERS = (1e-8, 1e-6, 1e-4)  # the first: `gp._EXACT_NOISE`


class Model(NamedTuple):
    """The GP a suggestion scores candidates with (`GPSampler.model`)."""

    gp: WarpedGP  #: the fitted GP, on warped inputs; with fantasy worlds as target columns
    x: np.ndarray  #: its inputs in the unit cube
    best: np.ndarray  #: the incumbent (the best mean), one entry per fantasy world
    steps: bool  #: whether the values come in steps (`reveals_steps`), so fitted noise-free


def pibo_weight_of(prior: SpacePrior, obs: Observations) -> float:
    """πBO's exponent of the prior (β / n after n complete trials) times min(1, 2s), s the
    prior's share against a uniform density in explaining the best third of the complete
    trials (by `loss`; `priors.prior_share`): the full weight while the prior explains them
    at least as well as a uniform density, and none once they lie far from it."""
    done = obs.of_state(COMPLETE)
    rows = obs.x[done]
    top = rows[np.argsort(obs.loss[done], kind="stable")[: max(2, math.ceil(len(done) / 3))]]
    return pibo_weight(len(done)) * evidence_weight(prior, top, rows)


def fantasize(gp: GaussianProcess, xp: np.ndarray, best: float, n: int,
              rng: np.random.Generator, redraw: np.ndarray | None = None
              ) -> tuple[GaussianProcess, np.ndarray]:
    """The GP conditioned, in each of n fantasy worlds, on a joint posterior draw of the
    latent function at the pending points xp (k, d), and each world's incumbent (n,).

    The model's targets become n columns that differ only in the k noise-free pending rows
    (one factorization serves all worlds); the draws are quasi-random (scrambled Sobol points
    through the normal quantile) so that few worlds cover the posterior evenly, or, in more
    than `_SOBOL_MAX_DIM` dimensions (where scrambling costs more than the rest), antithetic
    pairs of normal draws.

    `redraw` (indices of training rows) makes noisy expected improvement (Letham et al.
    2019): the latent values at those rows are drawn jointly with the pending ones and
    replace their noisy observations, noise-free, in every world (exact: given its latent
    value, an observation tells nothing more). Each world's incumbent is then its best drawn
    value, never a lucky noisy observation; the rows to redraw are those that can hold the
    incumbent (the best posterior means).
    """
    from scipy.special import ndtri

    rows = np.zeros(0, dtype=np.int64) if redraw is None else np.asarray(redraw)
    at = np.vstack([gp.x[rows], xp])
    mean, cov = gp.posterior_covariance(at)
    # a square root that survives running points at the same place or at observed points
    # (a singular covariance, where a Cholesky factorization fails)
    eigval, eigvec = np.linalg.eigh(0.5 * (cov + cov.T))
    chol = eigvec * np.sqrt(np.clip(eigval, 0.0, None))
    if len(at) <= _SOBOL_MAX_DIM:
        z = ndtri(np.clip(ScrambledSobol(len(at), rng).first(n), 1e-12, 1 - 1e-12))
    else:
        half = rng.standard_normal(((n + 1) // 2, len(at)))
        z = np.vstack([half, -half])[:n]
    worlds = mean[:, None] + chol @ z.T  # (rows of `at`, n)
    ys = np.vstack([np.broadcast_to(gp.y[:, None], (len(gp.y), n)), worlds[len(rows):]])
    ys[rows] = worlds[: len(rows)]
    exact = np.concatenate([rows, np.arange(len(gp.y), len(gp.y) + len(xp))])
    # without pending points, the model's inputs and kernel serve the worlds as they are
    x, kernel = (np.vstack([gp.x, xp]), None) if len(xp) else (gp.x, gp.kernel_at_x)
    conditioned = None
    for jitter in _DRAW_JITTERS:  # draws at close points can make the kernel matrix singular
        try:
            conditioned = GaussianProcess(x, ys, gp.cat, gp.hyper, exact=exact,
                                          exact_noise=jitter, kernel_at_x=kernel)
            break
        except np.linalg.LinAlgError:
            continue
    if conditioned is None:  # the model's own noise at every row
        conditioned = GaussianProcess(x, ys, gp.cat, gp.hyper, kernel_at_x=kernel)
    incumbent = worlds.min(axis=0) if len(at) else np.full(n, np.inf)
    return conditioned, np.minimum(incumbent, best if not len(rows) else np.inf)


Acq = Callable[[np.ndarray], np.ndarray]
AcqGrad = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def with_prior(acq: Acq, acq_grad: AcqGrad, prior: SpacePrior,
               weight: float) -> tuple[Acq, AcqGrad]:
    """πBO (Hvarfner et al. 2022): the log acquisition plus `weight` times the log prior."""

    def acq_prior(points: np.ndarray) -> np.ndarray:
        return acq(points) + weight * prior.log_pdf(points)

    def acq_grad_prior(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, grad = acq_grad(points)
        return value + weight * prior.log_pdf(points), grad + weight * prior.grad_log_pdf(points)

    return acq_prior, acq_grad_prior


def with_feasibility(acq: Acq, acq_grad: AcqGrad, model: GaussianProcess,
                     threshold: float) -> tuple[Acq, AcqGrad]:
    """The acquisition plus the log probability that `model`'s latent value lies below
    `threshold` (the probability of feasibility, in log form), with its gradient."""

    def acq_feasible(points: np.ndarray) -> np.ndarray:
        return acq(points) + log_probability_below(*model.predict(points), threshold)

    def acq_grad_feasible(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, grad = acq_grad(points)
        log_pof, d_log_pof = log_probability_below_with_grad(
            *model.predict_with_grad(points), threshold)
        return value + log_pof, grad + d_log_pof

    return acq_feasible, acq_grad_feasible


class GPSampler(ReplicaSalt, Sampler):
    """Matérn-5/2 ARD GP with learned noise and MAP hyperparameters; log-EI acquisition.

    From the 50th complete trial on, the ordered inputs may pass through a learned warp (a
    Kumaraswamy CDF per input, fitted with the kernel, `models/warp.py`), so that one
    stationary kernel can model a function that changes quickly in one part of a range,
    such as an optimum on a face of the box; the warped model is chosen when its evidence
    gains more than the price of its exponents (`targets.warp_penalty`).

    The incumbent of the expected improvement is the best posterior mean among evaluated
    points, which keeps the acquisition sensible for noisy objectives. With running trials
    the acquisition is the new point's share of the batch expected improvement (q-EI): EI
    averaged over fantasy worlds, each a joint posterior draw at the running points added as
    noise-free observations (a draw better than the incumbent becomes that world's
    incumbent). Unlike one believed value per running trial, the worlds keep the uncertainty
    of what those trials will return: with 4 simulated workers the regret's excess over
    sequential runs fell from about +50% to +10% (`benchmarks/quality.py`). Already tried or
    running points are never proposed again (the next best candidate is taken).
    `deterministic_objective=True` caps the fitted noise and keeps plain EI; the GP does so by
    itself while the values come in steps (`reveals_steps`), from the 50th complete trial on,
    and then proposes no point within a thousandth of a lengthscale of a tried one
    (`resolvable`): a stepped value can jump at any digit of a learning rate, and a
    noise-free model would chase those jumps.
    Above `max_points` evaluated trials the model is fitted on a subset: the best quarter, the
    neighbours of the incumbent, and a random rest. Inactive conditional dimensions are set
    to the middle of their range, in the data and in the candidates (which are scored as
    they will be decoded). Integers, log-scaled ones too, are scored and swept only at
    their values (a point between two values would be scored where it does not run).

    `multi_fidelity` (True, False or "auto"): fit the values at the largest budget with
    enough observations (see `budgets.py`); "auto" does so only while few trials are complete.
    Off by default: on the replayed learning curves of `benchmarks/multifidelity.py` it never
    helped the GP and ended worse on one family (TPE gains from it, see TPESampler).

    With `prior=` on parameters (πBO, Hvarfner et al. 2022): the log acquisition gains
    (β / n) w log π(x) after n complete trials (β = 10; w in [0, 1] by how well the prior
    explains the best third of them, see `pibo_weight_of`), and the startup points follow
    the prior in part (see `priors.py`).

    Several objectives, by `multi_objective`: "ehvi" (with two or three objectives; more
    fall back to "parego") is the log expected hypervolume improvement (`models/ehvi.py`):
    one GP per objective, each normalized to its observed range, and the exact expectation
    over the boxes of the region that no feasible trial dominates (reference point 1.1 of
    each range), summed in log space so that it keeps a slope far behind the front; running
    trials count with their predicted values. "parego" (Knowles 2006): each suggestion draws
    a weight vector from the simplex and the GP fits the augmented Chebyshev scalarization of
    the objectives (each normalized to its observed range); log EI on it as above.
    "auto" (the default) is "ehvi" with two objectives and "parego" with more: on the
    two-objective problems of `benchmarks/multiobjective.py` log EHVI ended ahead of ParEGO
    in most runs, at about twice its seconds per suggestion; with three objectives its boxes
    made a suggestion about 15 times slower (10 s at 200 trials on DTLZ2).

    Constraints: a second GP fits the violation (feasible trials below the threshold,
    infeasible ones above it by the log of their violation) and the acquisition adds the log
    probability of feasibility; the incumbent is the best mean among feasible trials.
    Multi-fidelity levels are not used in such studies (MOTPE fits them, `budgets.py`).
    """

    name = "gp"

    def __init__(self, seed: int | None = None, *, n_startup_trials: int = 10,
                 max_points: int = 256, deterministic_objective: bool = False,
                 multi_fidelity: MultiFidelity = False,
                 multi_objective: MultiObjective = "auto") -> None:
        super().__init__(seed)
        if multi_objective not in ("auto", "ehvi", "parego"):
            raise ValueError(f"GPSampler(multi_objective={multi_objective!r}): expected "
                             "'auto', 'ehvi' (log expected hypervolume improvement) or "
                             "'parego' (random Chebyshev scalarizations)")
        self.multi_objective: MultiObjective = multi_objective
        self.multi_fidelity = check_multi_fidelity(multi_fidelity, type(self).__name__)
        self.n_startup_trials = int(n_startup_trials)
        self.max_points = int(max_points)
        self.deterministic_objective = bool(deterministic_objective)
        self._startup = TPESampler(self.seed, n_startup_trials=n_startup_trials,
                                   multi_fidelity=self.multi_fidelity)

    def options(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials, "max_points": self.max_points,
                "deterministic_objective": self.deterministic_objective,
                "multi_fidelity": self.multi_fidelity, "multi_objective": self.multi_objective}

    def diverge(self) -> None:
        super().diverge()
        self._startup._replica = self._replica

    def suggest(self, space: Space, history: History, number: int) -> dict[str, Any]:
        obs = observations(space, history)
        done = obs.of_state(COMPLETE)
        plain = objectives_of(obs).shape[1] == 1 and not is_constrained(violation_of(obs))
        found = None if space.dim == 0 or not plain else fidelity(
            space, history, obs, self.multi_fidelity,
            max(min_observations(space, self.n_startup_trials), 2))
        if found is None and (space.dim == 0 or len(done) < max(self.n_startup_trials, 2)):
            return self._startup.suggest(space, history, number)  # no model: no BLAS to load
        with single_threaded_blas():
            return self._suggest_by_model(space, history, number, obs, found)

    def _suggest_by_model(self, space: Space, history: History, number: int,
                          obs: Observations, found: Fidelity | None) -> dict[str, Any]:
        rng = self.rng(number, self._replica)
        if found is None:
            points = self.propose(space, history, obs, rng)
        else:
            points = self.propose(space, history, found.obs, rng, found.budget)
        for x in points:
            params = space.decode(x)
            if params_key(params) not in obs.keys:
                return params
        return self._startup.startup_point(space, history, number)

    def model(self, space: Space, history: History, obs: Observations,
              rng: np.random.Generator, budget: float = TOP) -> Model:
        """The fitted GP (on warped inputs, see `models/warp.py`), its inputs, the
        incumbent (the best mean) as a 1-array, and whether the values come in steps; with
        running trials the GP holds fantasy worlds as target columns and the incumbent has
        one entry per world (see `fantasize`). `budget` names the level `obs` holds
        (hyperparameters are kept per level)."""
        cat = categorical_mask(space)
        done = obs.of_state(COMPLETE)
        x = np.nan_to_num(obs.x[done], nan=0.5)
        loss = self.targets(obs, done, rng)
        keep = self.subset(x, loss, rng)
        x = x[keep]
        tag = "hl.gp.hyper" if objectives_of(obs).shape[1] == 1 else "hl.gp.hyper.scalarized"
        memo_key = (tag, space.hash) if budget == TOP else (tag, space.hash, budget)
        # (the chosen fit, complete trials then, the chosen model, every model's fit)
        previous: tuple[Fit, int, Choice, dict[Choice, Fit]] | None = history.memo.get(
            memo_key)
        n = len(done)
        steps = n >= _STEP_MIN_TRIALS and reveals_steps(x, loss[keep])
        deterministic = self.deterministic_objective or steps
        if still_fresh(previous, n):
            assert previous is not None
            (hyper, warp), target = previous[0], previous[2][0]
            # the targets the fit chose (the Yeo-Johnson ones only when it chose them)
            targets = target_candidates(loss[keep], warped=target > 0)
            y = targets[min(target, len(targets) - 1)][0]
        else:
            starts = previous[3] if previous is not None else {}
            (hyper, warp), y, choice, fits = fit_targets(
                x, loss[keep], cat, starts,
                max_iter=fit_iterations(previous[0][0] if previous else None, len(keep)),
                chosen=None if previous is None else previous[2],
                warp=n >= _WARP_MIN_TRIALS)
            history.memo[memo_key] = ((hyper, warp), n, choice, fits)
        if deterministic:
            hyper = capped(hyper)
        inner = GaussianProcess(warp.apply(x), y, cat, hyper)
        gp = WarpedGP(inner, warp)
        mean = gp.predict_mean(x)
        ok = feasible(violation_of(obs)[done][keep])
        best = float(mean[ok].min()) if ok.any() else float(mean.max())
        pending = obs.of_state(RUNNING)
        noisy = not deterministic and self.noisy(gp.hyper)
        if len(pending) or noisy:
            # unknown values (running trials, and with noise the latent values at the
            # observed points): average the improvement over fantasy worlds drawn from the
            # joint posterior there (see `fantasize`)
            xp = np.nan_to_num(obs.x[pending], nan=0.5)
            redraw = None
            if noisy and ok.any():  # the rows that may hold the incumbent: the best means
                candidates = np.flatnonzero(ok)
                redraw = candidates[np.argsort(mean[candidates])[:_NOISY_EI_ROWS]]
            worlds, bests = fantasize(inner, warp.apply(xp), best, _FANTASY_WORLDS, rng,
                                      redraw)
            return Model(WarpedGP(worlds, warp), x, bests, steps)
        return Model(gp, x, np.array([best]), steps)

    def noisy(self, hyper: Hyper) -> bool:
        """Whether the fit finds the objective noisy enough for noisy expected improvement."""
        return not self.deterministic_objective and (
            hyper.log_noise - hyper.log_scale > math.log(_NOISY_EI_MIN_NOISE))

    @staticmethod
    def targets(obs: Observations, done: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """What the GP fits for the complete trials `done`: the objective (infeasible trials
        too: the probability of feasibility steers away from them), or with several
        objectives their augmented Chebyshev scalarization with weights drawn by `rng`."""
        y = objectives_of(obs)[done]
        if y.shape[1] == 1:
            return y[:, 0]
        return chebyshev(y, random_weights(y.shape[1], rng))

    def feasibility(self, space: Space, history: History, obs: Observations,
                    rng: np.random.Generator) -> tuple[GaussianProcess, float] | None:
        """A GP of the violation of complete trials and the threshold below which its
        latent value means feasible; None when no complete trial is infeasible.

        Targets: log(1 + v / s) for a violation v (s: the median positive violation), and
        minus the smallest such value for feasible trials; the threshold lies halfway."""
        done = obs.of_state(COMPLETE)
        v = np.nan_to_num(violation_of(obs)[done], nan=0.0)
        bad = v > 0
        if not bad.any():
            return None
        t = np.log1p(v / float(np.median(v[bad])))
        t[~bad] = -float(t[bad].min())
        x = np.nan_to_num(obs.x[done], nan=0.5)
        keep = self.subset(x, t, rng)
        x, t = x[keep], t[keep]
        centre, spread = float(t.mean()), float(t.std()) or 1.0
        y = (t - centre) / spread
        cat = categorical_mask(space)
        hyper = refit(history, ("hl.gp.hyper.violation", space.hash), x, y, cat, len(done))
        return GaussianProcess(x, y, cat, hyper), -centre / spread

    def subset(self, x: np.ndarray, loss: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Indices of at most `max_points` trials: best ones, incumbent's neighbours, random."""
        n = len(loss)
        if n <= self.max_points:
            return np.arange(n)
        order = np.argsort(loss, kind="stable")
        chosen = list(order[: self.max_points // 4])
        dist = np.sum((x - x[order[0]]) ** 2, axis=1)
        taken = set(chosen)
        for i in np.argsort(dist, kind="stable"):
            if len(chosen) >= self.max_points * 3 // 4:
                break
            if i not in taken:
                chosen.append(int(i))
                taken.add(int(i))
        rest = np.array([i for i in range(n) if i not in taken])
        chosen.extend(rng.choice(rest, size=self.max_points - len(chosen), replace=False))
        return np.sort(np.array(chosen, dtype=np.int64))

    def propose(self, space: Space, history: History, obs: Observations,
                rng: np.random.Generator, budget: float = TOP) -> np.ndarray:
        """Candidate points, best acquisition first."""
        k = objectives_of(obs).shape[1]
        ehvi = k in _EHVI_OBJECTIVES if self.multi_objective == "ehvi" else (
            k == 2 and self.multi_objective == "auto")
        if ehvi and budget == TOP:
            return self.propose_ehvi(space, history, obs, rng)
        gp, x, best, steps = self.model(space, history, obs, rng, budget)
        screen: Acq | None = None
        if gp.alpha.ndim == 2:  # fantasy worlds (columns) for running trials
            mean_at_x = gp.predict_mean(x).mean(axis=1)

            def acq(points: np.ndarray) -> np.ndarray:
                mean, std = gp.predict(points)
                return fantasy_log_expected_improvement(mean, std, best)

            def screen(points: np.ndarray) -> np.ndarray:
                mean, std = gp.predict(points, columns=_SCREEN_WORLDS)
                return fantasy_log_expected_improvement(mean, std, best[:_SCREEN_WORLDS])

            def acq_grad(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return fantasy_log_expected_improvement_with_grad(
                    *gp.predict_with_grad(points), best)
        else:
            mean_at_x = gp.predict_mean(x)

            def acq(points: np.ndarray) -> np.ndarray:
                mean, std = gp.predict(points)
                return log_expected_improvement(mean, std, float(best[0]))

            def acq_grad(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return log_expected_improvement_with_grad(*gp.predict_with_grad(points),
                                                          float(best[0]))
        incumbents = x[np.argsort(mean_at_x)[:8]]
        points = self.maximize(space, history, obs, rng, acq, acq_grad, incumbents,
                               np.exp(gp.hyper.log_ls), len(gp.x), screen,
                               ftol=_FANTASY_FTOL if gp.alpha.ndim == 2 else None)
        return resolvable(points, np.nan_to_num(obs.x, nan=0.5), gp) if steps else points

    def maximize(self, space: Space, history: History, obs: Observations,
                 rng: np.random.Generator, acq: Acq, acq_grad: AcqGrad,
                 incumbents: np.ndarray, lengthscales: np.ndarray, n_model: int,
                 screen: Acq | None = None, ftol: float | None = None) -> np.ndarray:
        """Candidate points, best first, of the acquisition times the probability of
        feasibility (when some trial is infeasible); `screen`, a cheaper approximation of
        the acquisition, scores the random pool when given; `ftol`, the local searches'
        stopping tolerance (`optimizer.maximize`)."""
        constraint = self.feasibility(space, history, obs, rng)
        prior = space_prior(space)
        weight = 0.0 if prior is None else pibo_weight_of(prior, obs)

        def weighed(value: Acq, grad: AcqGrad) -> tuple[Acq, AcqGrad]:
            if constraint is not None:
                value, grad = with_feasibility(value, grad, *constraint)
            if prior is not None:  # πBO: weigh by the prior^(β/n)
                value, grad = with_prior(value, grad, prior, weight)
            return value, grad

        score, score_grad = weighed(acq, acq_grad)
        screen = None if screen is None else weighed(screen, acq_grad)[0]
        if prior is not None:  # start some searches from the prior
            incumbents = np.vstack([incumbents, prior.sample(rng, 8)])
        # the pool shrinks as the model grows (its cost is pool size x model size); its
        # spread-out part is a scrambled Sobol' sample (see `_POOL`)
        n_uniform = int(np.clip(_POOL * 64 // n_model, _POOL // 4, _POOL))
        points = maximize(score, space.dim, categorical_mask(space), n_bins(space), incumbents,
                          rng, acq_grad=score_grad, lengthscales=lengthscales,
                          uniform=ScrambledSobol(space.dim, rng).first(n_uniform),
                          n_local=_POOL // 8, screen=screen, ftol=ftol,
                          levels=int_levels(space))
        if any(space[name].when for name in space.dims):
            # a point's inactive coordinates are dropped when decoded: score what will run
            points = np.nan_to_num(space.encode_many([space.decode(p) for p in points]),
                                   nan=0.5)
            points = points[np.argsort(-score(points), kind="stable")]
        return points

    def propose_ehvi(self, space: Space, history: History, obs: Observations,
                     rng: np.random.Generator) -> np.ndarray:
        """Candidate points, best first, by log expected hypervolume improvement (see
        `models/ehvi.py`): one GP per objective, each normalized to its observed range; the
        front is the feasible trials' values (and the posterior means at running trials),
        the reference point 1.1 in every normalized objective."""
        done = obs.of_state(COMPLETE)
        x = np.nan_to_num(obs.x[done], nan=0.5)
        y = normalize(objectives_of(obs)[done])
        keep = self.subset(x, y.max(axis=1), rng)
        x, y = x[keep], y[keep]
        cat = categorical_mask(space)
        d2 = sq_dists(x, x, cat)
        k = y.shape[1]
        centres, spreads = y.mean(axis=0), np.where(y.std(axis=0) > 0, y.std(axis=0), 1.0)
        targets = (y - centres) / spreads
        gps = [GaussianProcess(x, targets[:, j], cat, refit(
            history, ("hl.gp.hyper.objective", j, space.hash), x, targets[:, j], cat,
            len(done), d2, self.deterministic_objective), d2=d2) for j in range(k)]
        ok = feasible(violation_of(obs)[done][keep])
        front = y[ok]
        pending = obs.of_state(RUNNING)
        if len(pending):  # running trials: their predicted values count as observed
            xp = np.nan_to_num(obs.x[pending], nan=0.5)
            believed = np.column_stack([gp.predict_mean(xp) for gp in gps]) * spreads + centres
            front = np.vstack([front, believed])
        lower, upper = improvement_boxes(front, np.full(k, 1.1))

        def acq(points: np.ndarray) -> np.ndarray:
            pred = [gp.predict(points) for gp in gps]
            mean = np.column_stack([p[0] for p in pred]) * spreads + centres
            std = np.column_stack([p[1] for p in pred]) * spreads
            return np.asarray(log_ehvi(mean, std, lower, upper))

        def acq_grad(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            pred = [gp.predict_with_grad(points) for gp in gps]
            mean = np.column_stack([p[0] for p in pred]) * spreads + centres
            std = np.column_stack([p[1] for p in pred]) * spreads
            value, d_mean, d_std = log_ehvi(mean, std, lower, upper, grad=True)
            grad = np.zeros_like(points)
            for j, (_, _, chain) in enumerate(pred):
                grad += chain(d_mean[:, j] * spreads[j], d_std[:, j] * spreads[j])
            return value, grad

        best = np.flatnonzero(ok)[pareto_mask(y[ok])] if ok.any() else np.arange(len(y))
        incumbents = x[rng.permutation(best)[:8]]
        log_ls = np.mean([gp.hyper.log_ls for gp in gps], axis=0)
        return self.maximize(space, history, obs, rng, acq, acq_grad, incumbents,
                             np.exp(log_ls), len(x))


def refit(history: History, key: tuple, x: np.ndarray, y: np.ndarray, cat: np.ndarray,
          n: int, d2: np.ndarray | None = None, deterministic: bool = False) -> Hyper:
    """GP hyperparameters for targets y, kept in the history's memo under `key`: refitted
    from the last ones unless n, the number of complete trials, grew by under 5% (see
    `still_fresh`)."""
    previous: tuple[Hyper, int] | None = history.memo.get(key)
    if still_fresh(previous, n):
        assert previous is not None
        return previous[0]
    start = previous[0] if previous is not None else None
    hyper = fit_hyper(x, y, cat, start, max_iter=fit_iterations(start, len(y)), d2=d2)
    if deterministic:
        hyper = capped(hyper)
    history.memo[key] = (hyper, n)
    return hyper


def still_fresh(previous: tuple[Any, ...] | None, n: int) -> bool:
    """Whether a memoized fit (hyperparameters, the number of complete trials then, ...) is
    kept until 5% new complete trials have arrived since it was made (every trial refits up
    to 39 trials, every other one from 40, every fifth from 100)."""
    return previous is not None and n - previous[1] < n // 20


def fit_iterations(start: Hyper | None, rows: int) -> int:
    """L-BFGS-B iterations of a hyperparameter fit: few when warm-started on many rows."""
    return 15 if start is not None and rows > 50 else 60


def capped(hyper: Hyper) -> Hyper:
    """`hyper` with its noise variance capped at 1e-5 (the targets are standardized), for a
    deterministic objective."""
    return Hyper(hyper.log_ls, hyper.log_scale, min(hyper.log_noise, math.log(1e-5)))


def resolvable(points: np.ndarray, tried: np.ndarray, gp: WarpedGP) -> np.ndarray:
    """The candidate `points`, in their order, that lie more than `_RESOLUTION` lengthscales
    of `gp`'s kernel from every configuration in `tried` (unit-cube rows)."""
    if not len(points) or not len(tried):
        return points
    r2 = scaled_sq_dists(gp.warp.apply(points), gp.warp.apply(tried), gp.gp.cat,
                         gp.gp.inv_ls2)
    return points[r2.min(axis=1) >= _RESOLUTION**2]


def reveals_steps(x: np.ndarray, loss: np.ndarray) -> bool:
    """Whether complete trials (unit-cube rows `x`, `loss`) show a deterministic objective
    whose values come in steps, such as an error rate counted in misclassified samples: at
    least `_STEP_SHARE` of the better half of them repeat, exactly, the value of another of
    that half at a distinct configuration (more than `_DISTINCT` apart in some coordinate).

    Observation noise never repeats a value to the last bit. A GP that fits noise to steps
    smooths away the small islands below a plateau, which a noise-free fit keeps (see
    `deterministic_objective`)."""
    half = np.argsort(loss, kind="stable")[: (len(loss) + 1) // 2]
    values, rows = loss[half], x[half]  # ascending: equal values are neighbours
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    repeated = 0
    for a, b in zip(starts, ends, strict=True):
        if b - a > 1:
            group = rows[a:b]
            apart = np.abs(group[:, None, :] - group[None, :, :]).max(axis=2) > _DISTINCT
            repeated += int(apart.any(axis=1).sum())
    return len(values) > 1 and repeated >= _STEP_SHARE * len(values)
