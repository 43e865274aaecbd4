"""The tuning specification and the one Optuna study every tuning worker shares.

Optuna does the searching; this module only chooses its pieces from a
:class:`TuningSpec`:

=========== ========================================== ==============================
strategy    sampler                                    pruner
=========== ========================================== ==============================
random      ``RandomSampler``                          none
grid        ``GridSampler`` over the algorithms' grids none
bayesian    ``TPESampler`` (multivariate, grouped)     none
hyperband   ``TPESampler`` (multivariate, grouped)     ``HyperbandPruner`` on rounds
=========== ========================================== ==============================

The study lives in a relational database every worker reaches (the stack's PostgreSQL,
``MLOPS_OPTUNA_STORAGE``; SQLite files in unit tests), so parallel workers in
other processes or on other machines draw from, and learn from, one search. Samplers are
not stored with the study: each worker rebuilds them from the spec, seeded per worker so
two workers never replay the same random sequence.

Parameter names are prefixed with the algorithm (``xgboost__max_depth``) as in
:mod:`include.mlops.training.algorithms`, and a multi-algorithm search first draws
``algorithm``; TPE's ``group=True`` then models each algorithm's parameters separately,
which is what a conditional space needs.

Grid search enumerates each algorithm's grid and offers the distinct points as ONE
categorical parameter, ``grid_point``. Handing ``GridSampler`` the union of the prefixed
grids instead would make it walk the cross product of every algorithm's grid, visiting
each real configuration once per combination of the *other* algorithms' (unused) values:
with xgboost and random forest, 32 grid points for 8 distinct models.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna

from include.mlops.training.algorithms import (
    PARAM_SEPARATOR,
    TUNABLE_ALGORITHMS,
    get_algorithm,
    param_key,
    search_space,
)
from include.mlops.training.fit import REPORT_CHECKPOINTS, metrics_for
from include.mlops.vocabulary import METRIC_DIRECTION, PROBLEM_TYPES, TUNING_STRATEGIES

#: Environment variable holding the study database URL (docker-compose sets a Postgres one).
STORAGE_ENV = "MLOPS_OPTUNA_STORAGE"
#: The Optuna parameter that picks the algorithm in a multi-algorithm search.
ALGORITHM_PARAM = "algorithm"
#: The Optuna parameter that picks a configuration in grid search.
GRID_PARAM = "grid_point"
#: Seconds a SQLite writer waits for the lock before failing; trials take seconds, and
#: several workers' short writes (ask, report, tell) queue behind each other.
SQLITE_LOCK_TIMEOUT_S = 30
#: Hyperband keeps the best third of trials at each rung.
HYPERBAND_REDUCTION_FACTOR = 3
#: Rounds of an iterative algorithm that does not search ``n_estimators``.
DEFAULT_MAX_ROUNDS = 500


@dataclass(frozen=True)
class TuningSpec:
    """What to search, how, and within which budget. JSON-able (:meth:`to_dict`).

    Attributes:
        strategy: ``random``, ``grid``, ``bayesian`` (TPE) or ``hyperband`` (TPE + pruning).
        objective: Validation metric to optimise (a key of ``METRIC_DIRECTION``).
        algorithms: Algorithms to search over (at least one).
        problem_type: ``binary``, ``multiclass`` or ``regression`` (already inferred).
        max_trials: Trials started across all workers (grid: at most the grid's size).
        max_parallel_trials: Workers running trials at the same time.
        timeout_minutes: Wall-clock budget of the whole tuning, or ``None``.
        seed: Seed of the samplers and of every fit.
        fixed_params: Optuna-named parameters pinned for every trial, e.g.
            ``{"xgboost__n_estimators": 100}``; they win over searched and grid values.
    """

    strategy: str
    objective: str
    algorithms: tuple[str, ...]
    problem_type: str
    max_trials: int = 20
    max_parallel_trials: int = 1
    timeout_minutes: float | None = None
    seed: int = 0
    fixed_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Lists from JSON become tuples so the spec stays hashable-ish and immutable;
        # duplicates would only skew the algorithm draw.
        object.__setattr__(self, "algorithms", tuple(dict.fromkeys(self.algorithms)))
        object.__setattr__(self, "fixed_params", dict(self.fixed_params))
        if isinstance(self.timeout_minutes, int | float) and not isinstance(
            self.timeout_minutes, bool
        ):
            # 30 and 30.0 are one budget; the stored spec must compare equal either way.
            object.__setattr__(self, "timeout_minutes", float(self.timeout_minutes))
        problems = self.problems()
        if problems:
            raise ValueError("invalid tuning spec: " + "; ".join(problems))

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        """``maximize`` or ``minimize``, from the objective metric."""
        return "maximize" if METRIC_DIRECTION[self.objective] == "max" else "minimize"

    @property
    def timeout_seconds(self) -> float | None:
        """The wall-clock budget in seconds, or ``None``."""
        return None if self.timeout_minutes is None else float(self.timeout_minutes) * 60.0

    def deadline(self, started_at: float) -> float | None:
        """When workers stop starting trials: ``started_at`` plus the timeout.

        Args:
            started_at: ``time.time()`` when the tuning began (the same value for every
                worker, e.g. when the study was created, so a worker that waited in the
                queue does not get a fresh budget).

        Returns:
            A ``time.time()`` value, or ``None`` without a timeout.
        """
        seconds = self.timeout_seconds
        return None if seconds is None else started_at + seconds

    def problems(self) -> list[str]:
        """Everything wrong with the spec, each said plainly (empty when valid)."""
        found: list[str] = []
        if self.strategy not in TUNING_STRATEGIES:
            found.append(f"strategy {self.strategy!r} must be one of {list(TUNING_STRATEGIES)}")
        if self.problem_type not in PROBLEM_TYPES:
            found.append(
                f"problem_type {self.problem_type!r} must be one of {list(PROBLEM_TYPES)} "
                "(infer 'auto' before tuning)"
            )
        elif self.objective not in metrics_for(self.problem_type):
            found.append(
                f"objective {self.objective!r} does not apply to {self.problem_type} problems; "
                f"choose from {list(metrics_for(self.problem_type))}"
            )
        if not self.algorithms:
            found.append("algorithms is empty; name at least one")
        for name in self.algorithms:
            if name not in TUNABLE_ALGORITHMS:
                found.append(f"unknown algorithm {name!r}; choose from {list(TUNABLE_ALGORITHMS)}")
            elif self.problem_type in PROBLEM_TYPES and not get_algorithm(name).supports(
                self.problem_type
            ):
                found.append(f"algorithm {name!r} does not solve {self.problem_type} problems")
        if not isinstance(self.max_trials, int) or self.max_trials < 1:
            found.append(f"max_trials {self.max_trials!r} must be a whole number >= 1")
        if not isinstance(self.max_parallel_trials, int) or self.max_parallel_trials < 1:
            found.append(
                f"max_parallel_trials {self.max_parallel_trials!r} must be a whole number >= 1"
            )
        if self.timeout_minutes is not None and not self.timeout_minutes > 0:
            found.append(f"timeout_minutes {self.timeout_minutes!r} must be > 0 (or null)")
        for key in self.fixed_params:
            owner = key.split(PARAM_SEPARATOR, 1)[0]
            if PARAM_SEPARATOR not in key or owner not in self.algorithms:
                found.append(
                    f"fixed parameter {key!r} must be named '<algorithm>{PARAM_SEPARATOR}<param>' "
                    f"for one of {list(self.algorithms)}"
                )
        return found

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``direction`` included for readers; ignored by :meth:`from_dict`)."""
        data = asdict(self)
        data["algorithms"] = list(self.algorithms)
        data["fixed_params"] = dict(self.fixed_params)
        data["direction"] = self.direction
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TuningSpec:
        """Rebuild a spec from :meth:`to_dict` output (unknown keys are ignored)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def fixed_for(self, algorithm: str) -> dict[str, Any]:
        """The pinned parameters of one algorithm, unprefixed."""
        prefix = f"{algorithm}{PARAM_SEPARATOR}"
        return {k[len(prefix) :]: v for k, v in self.fixed_params.items() if k.startswith(prefix)}


# -- the search space ------------------------------------------------------------------------
def grid_points(spec: TuningSpec) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every distinct configuration grid search visits, by its label.

    Each algorithm contributes the cross product of its own grid (pinned parameters
    applied), so the grid's size is the sum, not the product, of the algorithms' grids.

    Args:
        spec: The tuning spec.

    Returns:
        ``label -> (algorithm, grid parameters)``, e.g.
        ``"xgboost(learning_rate=0.03, max_depth=3)" -> ("xgboost", {...})``, in a stable order.
    """
    points: dict[str, tuple[str, dict[str, Any]]] = {}
    for algorithm in spec.algorithms:
        grid = {**get_algorithm(algorithm).grid_values}
        grid.update({k: [v] for k, v in spec.fixed_for(algorithm).items()})
        names = sorted(grid)
        for values in itertools.product(*(grid[name] for name in names)):
            params = dict(zip(names, values, strict=True))
            inner = ", ".join(
                f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in params.items()
            )
            points.setdefault(f"{algorithm}({inner})", (algorithm, params))
    return points


def trial_budget(spec: TuningSpec) -> int:
    """How many trials the study may start: ``max_trials``, or fewer for a smaller grid."""
    if spec.strategy == "grid":
        return min(spec.max_trials, len(grid_points(spec)))
    return spec.max_trials


def draw_candidate(trial: optuna.Trial, spec: TuningSpec) -> tuple[str, dict[str, Any]]:
    """Draw one trial's algorithm and estimator parameters through the study's sampler.

    Args:
        trial: The trial from ``study.ask()``.
        spec: The tuning spec the study was built from.

    Returns:
        ``(algorithm, params)``: estimator parameters, unprefixed, defaults included.
    """
    if spec.strategy == "grid":
        points = grid_points(spec)
        label = trial.suggest_categorical(GRID_PARAM, list(points))
        algorithm, grid_params = points[str(label)]
        params = {**get_algorithm(algorithm).default_params(), **grid_params}
    else:
        algorithm = (
            spec.algorithms[0]
            if len(spec.algorithms) == 1
            else str(trial.suggest_categorical(ALGORITHM_PARAM, list(spec.algorithms)))
        )
        params = search_space(algorithm, trial, spec.problem_type)
    # Pinned values the space does not search still have to reach the estimator.
    params.update(spec.fixed_for(algorithm))
    return algorithm, params


# -- samplers and pruners --------------------------------------------------------------------
def sampler_for(spec: TuningSpec, *, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of a strategy (see the module docstring).

    Args:
        spec: The tuning spec.
        seed: Sampler seed (default ``spec.seed``; workers pass their own, see
            :func:`worker_seed`).

    Returns:
        The sampler; pinned parameters are fixed with ``PartialFixedSampler``.
    """
    seed = spec.seed if seed is None else seed
    sampler: optuna.samplers.BaseSampler
    if spec.strategy == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    elif spec.strategy == "grid":
        # Pinned values are already inside the grid points.
        return optuna.samplers.GridSampler({GRID_PARAM: list(grid_points(spec))}, seed=seed)
    else:
        with warnings.catch_warnings():
            # multivariate/group (and PartialFixedSampler below) are flagged experimental;
            # they are what a per-algorithm conditional space needs, and tests pin them.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=seed,
                multivariate=True,
                group=True,
                # Running trials count as "bad" guesses so parallel workers spread out
                # instead of all sampling the same promising point.
                constant_liar=True,
                n_startup_trials=startup_trials(spec.max_trials),
            )
    if spec.fixed_params:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.PartialFixedSampler(dict(spec.fixed_params), sampler)
    return sampler


def startup_trials(max_trials: int) -> int:
    """Random trials before TPE models the space: a quarter of the budget, 3 to 10.

    Optuna's default of 10 would leave a 20-trial budget half random; fewer than 3 gives
    TPE nothing to model.
    """
    return max(3, min(10, max_trials // 4))


def pruner_for(spec: TuningSpec) -> optuna.pruners.BasePruner:
    """The pruner of a strategy: Hyperband over boosting rounds, or none.

    The resource is the boosting round that ``fit_candidate`` reports the validation
    objective at (every ``n_estimators / REPORT_CHECKPOINTS`` rounds, at most every 10).
    ``min_resource`` is the first report of the smallest round budget in the search
    space and ``max_resource`` the largest budget, so rungs fall on reported rounds.
    One-shot algorithms report once at step 1, below every rung, and are never pruned:
    stopping them early would save nothing.

    Args:
        spec: The tuning spec.

    Returns:
        ``HyperbandPruner`` for ``hyperband``, ``NopPruner`` otherwise.
    """
    if spec.strategy != "hyperband":
        return optuna.pruners.NopPruner()
    low, high = boosting_rounds(spec)
    min_resource = max(1, min(low // REPORT_CHECKPOINTS, 10))
    return optuna.pruners.HyperbandPruner(
        min_resource=min_resource,
        max_resource=max(high, min_resource + 1),
        reduction_factor=HYPERBAND_REDUCTION_FACTOR,
    )


def boosting_rounds(spec: TuningSpec) -> tuple[int, int]:
    """Smallest and largest ``n_estimators`` any iterative algorithm of the spec may train."""
    lows, highs = [], []
    for algorithm in spec.algorithms:
        definition = get_algorithm(algorithm)
        if not definition.iterative:
            continue
        pinned = spec.fixed_params.get(param_key(algorithm, "n_estimators"))
        if pinned is not None:
            lows.append(int(pinned))
            highs.append(int(pinned))
            continue
        bounds = _int_bounds(algorithm, spec.problem_type).get("n_estimators")
        default = int(definition.defaults.get("n_estimators", DEFAULT_MAX_ROUNDS))
        low, high = bounds if bounds else (default, default)
        lows.append(low)
        highs.append(high)
    if not lows:
        return DEFAULT_MAX_ROUNDS, DEFAULT_MAX_ROUNDS
    return min(lows), max(highs)


class _BoundsProbe:
    """Stands in for a trial to read the integer ranges an algorithm's space asks for."""

    def __init__(self) -> None:
        self.ints: dict[str, tuple[int, int]] = {}

    def suggest_int(self, name: str, low: int, high: int, **kwargs: Any) -> int:
        self.ints[name] = (int(low), int(high))
        return int(low)

    def suggest_float(self, name: str, low: float, high: float, **kwargs: Any) -> float:
        return float(low)

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return choices[0]


def _int_bounds(algorithm: str, problem_type: str) -> dict[str, tuple[int, int]]:
    probe = _BoundsProbe()
    search_space(algorithm, probe, problem_type)  # type: ignore[arg-type]
    prefix = f"{algorithm}{PARAM_SEPARATOR}"
    return {k.removeprefix(prefix): v for k, v in probe.ints.items()}


#: The trial user attribute naming the tuning worker that asked for it (its owner).
WORKER_ATTR = "worker"


def worker_seed(seed: int, worker: int, own_trials_so_far: int) -> int:
    """A sampler seed per worker and attempt.

    Workers built from one spec with one seed would draw identical random sequences;
    mixing in the worker number separates them, and mixing in the trials this worker
    already ran keeps a retried worker from replaying its first attempt. Counting only the
    worker's own trials (not the study's) makes each worker's first attempt draw the same
    sequence whichever worker starts first: a run's random start-up trials depend on
    ``seed`` alone, not on a race between workers.
    """
    return int(np.random.SeedSequence([seed, worker, own_trials_so_far]).generate_state(1)[0])


# -- storage and study -----------------------------------------------------------------------
def storage_url_from_env(
    env: Mapping[str, str] | None = None, *, default: str | None = None
) -> str:
    """The study database URL: ``MLOPS_OPTUNA_STORAGE``, else ``default``.

    Args:
        env: Mapping to read instead of ``os.environ``.
        default: URL when the variable is unset.

    Returns:
        An SQLAlchemy URL, e.g. ``postgresql+psycopg2://optuna:...@127.0.0.1:8432/optuna``.

    Raises:
        ValueError: Neither is set.
    """
    env = os.environ if env is None else env
    url = env.get(STORAGE_ENV) or default
    if not url:
        raise ValueError(
            f"no Optuna storage configured: set {STORAGE_ENV} to a database URL every tuning "
            "worker can reach (the stacks set it to their PostgreSQL: "
            "postgresql+psycopg2://optuna:<password>@<host>:<port>/optuna)"
        )
    return url


def public_url(url: str) -> str:
    """The URL with its password masked: what may be logged or passed between tasks."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_storage(storage_url: str) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage, tuned for several writer processes.

    SQLite serialises writers with a file lock; the default 5 s wait is too short when
    several workers report and tell at once, so writers wait up to
    :data:`SQLITE_LOCK_TIMEOUT_S`. Server databases get ``pool_pre_ping`` so a long
    worker survives the server closing idle connections.

    Args:
        storage_url: SQLAlchemy URL.

    Returns:
        The storage (tables created if missing).
    """
    if storage_url.startswith("sqlite"):
        path = storage_url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    return optuna.storages.RDBStorage(storage_url, engine_kwargs=engine_kwargs)


class TrialClaims:
    """Serialises "count the started trials, then ask for one" across every worker of a study.

    Without it two workers can both see ``budget - 1`` trials started and both ask: the
    study ends with more trials than ``max_trials``. On PostgreSQL the claim is a
    session-level advisory lock keyed by the study name (held on a connection of its
    own, so Optuna's own writes never wait on it); on SQLite a file lock beside the
    database; other databases are not locked (each worker may then start one extra).

    Use as a context manager around the worker's loop, and :meth:`claim` around each
    count-and-ask.

    Args:
        storage_url: The study database's SQLAlchemy URL.
        study_name: The study.
    """

    def __init__(self, storage_url: str, study_name: str) -> None:
        self.storage_url = storage_url
        self.key = int.from_bytes(
            hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True
        )
        self._stack = contextlib.ExitStack()
        self._conn: Any = None
        self._lock_file: Any = None

    def __enter__(self) -> TrialClaims:
        if self.storage_url.startswith("postgresql"):
            import sqlalchemy as sa
            from sqlalchemy.pool import NullPool

            engine = sa.create_engine(self.storage_url, poolclass=NullPool)
            self._stack.callback(engine.dispose)
            self._conn = self._stack.enter_context(engine.connect())
        elif self.storage_url.startswith("sqlite"):
            path = self.storage_url.split(":///", 1)[-1]
            if path and path != ":memory:":
                self._lock_file = self._stack.enter_context(open(f"{path}.claims.lock", "a+b"))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @contextlib.contextmanager
    def claim(self) -> Iterator[None]:
        """Hold the study's claim lock (one worker at a time counts and asks)."""
        if self._conn is not None:
            import sqlalchemy as sa

            self._conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": self.key})
            self._conn.commit()
            try:
                yield
            finally:
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                self._conn.commit()
        elif self._lock_file is not None:
            import fcntl

            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
        else:
            yield


def create_or_load_study(
    storage_url: str | optuna.storages.BaseStorage,
    study_name: str,
    spec: TuningSpec,
    *,
    worker: int = 0,
) -> optuna.Study:
    """Create the shared study, or join it when another worker created it first.

    Call it once before fanning out (so the tables and the study exist), then once in
    each worker. The spec is stored on the study; joining with a different spec is
    refused, so two tuning runs never mix their trials under one name.

    Args:
        storage_url: SQLAlchemy URL of the study database (or a ready storage).
        study_name: Unique per tuning run, e.g. ``churn-<airflow run id>``.
        spec: The tuning spec.
        worker: This worker's number (seeds its sampler, see :func:`worker_seed`).

    Returns:
        The study with this worker's sampler and the strategy's pruner.

    Raises:
        ValueError: The study exists with a different direction or spec.
    """
    storage = open_storage(storage_url) if isinstance(storage_url, str) else storage_url
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=spec.direction,
        sampler=sampler_for(spec),
        pruner=pruner_for(spec),
        load_if_exists=True,
    )
    wanted = spec.to_dict()
    stored = study.user_attrs.get("spec")
    if study.direction.name.lower() != spec.direction:
        raise ValueError(
            f"study {study_name!r} exists and {study.direction.name.lower()}s its objective, "
            f"but the spec asks to {spec.direction} {spec.objective}; use a new study name"
        )
    if stored is None:
        study.set_user_attr("spec", wanted)
        # The deadline counts from here for every worker (see study_deadline).
        study.set_user_attr("created_at", time.time())
    elif _canonical(stored) != _canonical(wanted):
        raise ValueError(
            f"study {study_name!r} exists with another tuning spec ({stored}); "
            f"this run's spec is {wanted}; use a new study name per tuning run"
        )
    own = sum(
        1 for t in study.get_trials(deepcopy=False) if t.user_attrs.get(WORKER_ATTR) == worker
    )
    study.sampler = sampler_for(spec, seed=worker_seed(spec.seed, worker, own))
    return study


def study_deadline(study: optuna.Study, spec: TuningSpec) -> float | None:
    """The shared deadline: the study's creation time plus ``timeout_minutes``.

    Every worker computes the same value, however long it waited in Airflow's queue.

    Args:
        study: A study from :func:`create_or_load_study`.
        spec: Its tuning spec.

    Returns:
        A ``time.time()`` value for :func:`include.mlops.tuning.worker.run_trials`, or
        ``None`` without a timeout.
    """
    created = study.user_attrs.get("created_at")
    return spec.deadline(float(created) if created is not None else time.time())


def _canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=str)
