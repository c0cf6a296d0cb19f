"""What the prediction experiments P2-P4 and Figure 10 share: the grokked starting networks,
"train or reuse" of an engine batch, and per-model convergence numbers.

Grokked starting networks (:class:`BaseConfig`)
-----------------------------------------------
Ungrokking (P2, P3) and Figure 10 both start from networks that have generalised: the paper
trains them on the full dataset (Appendix A, Figure 7: "each starting from a network
trained on the full dataset"). :func:`train_base` trains one such network per seed in one
engine batch and reports each one's trigonometric share (a G-only network has more than 95%
of its logit norm there, Section 5.1), so a report can say whether the starting points were G-only.
``spare_seeds`` are trained in the same batch; :meth:`BaseResult.chosen` replaces a base that is
not G-only by a G-only spare (the continuations then keep the spare's seed).

Continuing on a subset
----------------------
A continuation of base model ``i`` on D' examples uses ``RunSpec(init_index=i,
data_seed=<base data_seed of i>)``: the engine's training sets of one data seed are nested
prefixes of one permutation (:func:`circeff.empirical.tasks.train_indices`), so the reduced set
is a random subset of the set the base network was trained on (with a full-dataset base, a
random subset of all pairs), different for every seed.

Convergence
-----------
With AdamW the decay per step is ``lr * weight_decay``, so a run is compared
at convergence, not at a fixed step count. :func:`convergence_table` gives, per model, the
change of test accuracy and the relative change of the parameter norm over the last
``window`` of the steps; a model is ``converged`` when both are below their tolerances. The
numbers are reported, never used to drop a run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from circeff.empirical.checkpoint import CHECKPOINT_NAME, load_checkpoint
from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig, Training, TrainingView
from circeff.empirical.backend import Trainer, train_or_reuse
from circeff.errors import ConfigError
from circeff.thresholds import G_ONLY_TRIG_SHARE
from circeff.validate import in_range, integer_at_least, non_empty, positive

__all__ = [
    "QUICK",
    "SMALL_MODEL",
    "quick_base",
    "TINY_MODEL",
    "BaseConfig",
    "BaseResult",
    "check_continuation_fields",
    "config_fingerprint",
    "convergence_table",
    "final_rows",
    "sizes_below",
    "sorted_unique",
    "train_base",
]

# The narrower model of the CPU presets (the same as the P1 presets use): a quarter of the
# default's matmul work per example. Measured on P = 23: about 3 ms per model-step with one
# thread, against 11 ms for the paper's width.
SMALL_MODEL = ModelConfig(d_model=64, n_heads=4, d_head=16, d_mlp=256)
# For tests only: fast enough that a whole pipeline runs in seconds.
TINY_MODEL = ModelConfig(d_model=16, n_heads=2, d_head=8, d_mlp=32)

# The quick scale's training: the narrower model and a larger learning rate, so that it groks
# within 1500 steps on a CPU. Every experiment config's defaults are the quick preset (built from
# this), so there is no unnamed fourth set of settings; empirical.presets names the others.
QUICK = Training(p=23, model=SMALL_MODEL, lr=3e-3, steps=1500, seeds=(0, 1, 2), log_every=50, checkpoint_every=500)


def config_fingerprint(obj: object) -> str:
    """Short sha256 of a config's JSON (dataclasses via ``asdict``), for done markers."""
    data = asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sorted_unique(name: str, values: Sequence[object], cast: type, *, at_least: int = 1) -> tuple:
    """``values`` cast, deduplicated and sorted; ConfigError naming ``name`` if fewer than
    ``at_least`` distinct values remain."""
    non_empty(name, list(values))
    out = tuple(sorted({cast(v) for v in values}))
    if len(out) < at_least:
        raise ConfigError(name, f"needs at least {at_least} distinct values", list(values))
    return out


def sizes_below(values: Sequence[object], limit: int, why: str, *, at_least: int = 1) -> tuple[int, ...]:
    """The dataset sizes ``values`` as sorted distinct integers, each in ``[1, limit)``;
    ConfigError naming ``sizes`` otherwise (``why`` completes "must be < limit")."""
    sizes = sorted_unique("sizes", values, int, at_least=at_least)
    for d in sizes:
        integer_at_least("sizes", d, 1)
        if d >= limit:
            raise ConfigError("sizes", f"must be < {limit}{why}", d)
    return sizes


def check_continuation_fields(config: object) -> None:
    """Validate the fields that the continuation experiments (Figure 10, ungrokking) share:
    ``decay_budget``, ``log_every``, the convergence numbers and the confidence level."""
    positive("decay_budget", config.decay_budget)
    integer_at_least("log_every", config.log_every, 1)
    in_range("convergence_window", config.convergence_window, 0.0, 1.0, lo_open=True)
    positive("acc_tol", config.acc_tol)
    positive("norm_tol", config.norm_tol)
    in_range("level", config.level, 0.0, 1.0, lo_open=True, hi_open=True)


@dataclass(frozen=True)
class BaseConfig(TrainingView):
    """Networks that have generalised, one per seed, to continue from (Appendix A).

    Attributes:
        training: task, P, model, optimiser, steps, seeds (one network per seed; its data seed
            is the same number), device; shared with every continuation.
        train_frac: fraction of the pairs it is trained on (1.0: the full dataset, as the paper).
        g_only_share: trig share above which a network counts as G-only (Section 5.1: 0.95).
        spare_seeds: more networks trained alongside, to replace a base that is not G-only.
    """

    training: Training = QUICK
    train_frac: float = 1.0
    g_only_share: float = G_ONLY_TRIG_SHARE
    spare_seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.training, Training):
            raise ConfigError("training", "must be a Training", type(self.training).__name__)
        sorted_unique("seeds", self.training.seeds, int, at_least=2)
        spares = tuple(int(s) for s in self.spare_seeds)
        if set(spares) & set(self.training.seeds) or len(set(spares)) != len(spares):
            raise ConfigError("spare_seeds", "must be distinct and not among the seeds", list(self.spare_seeds))
        object.__setattr__(self, "spare_seeds", spares)
        in_range("train_frac", self.train_frac, 0.0, 1.0, lo_open=True)
        in_range("g_only_share", self.g_only_share, 0.0, 1.0)

    @property
    def task(self) -> str:
        return self.training.task

    @property
    def train_size(self) -> int:
        return self.training.size(self.train_frac)

    @property
    def all_seeds(self) -> tuple[int, ...]:
        """The seeds and then the spare seeds: model ``i`` of the base batch has ``all_seeds[i]``."""
        return tuple(self.seeds) + self.spare_seeds

    def train_config(self) -> TrainConfig:
        runs = [RunSpec(seed=s, weight_decay=self.weight_decay, train_size=self.train_size, data_seed=s)
                for s in self.all_seeds]
        return self.training.engine(self.task_config, runs)

    def continuation(self, specs: Sequence[tuple[int, float, int]], steps: int, *,
                     init_from: Path, log_every: int | None = None) -> TrainConfig:
        """A batch continuing base models on subsets: ``specs`` are ``(D', weight_decay,
        base index)``; each model keeps its base network's seed and data seed."""
        seeds = self.all_seeds
        runs = [RunSpec(seed=seeds[i], weight_decay=float(wd), train_size=int(d),
                        data_seed=seeds[i], init_index=int(i)) for d, wd, i in specs]
        return self.training.engine(self.task_config, runs, steps=int(steps), log_every=log_every or self.log_every,
                                    init_from=str(init_from))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class BaseResult:
    """The base run folder and, per network, its final accuracies and trig share."""

    run_dir: Path
    rows: pd.DataFrame

    @property
    def all_g_only(self) -> bool:
        return bool(self.rows["g_only"].all())

    @property
    def trig_share_measured(self) -> bool:
        """Whether the bases have a trig share: :func:`train_base` measures it for modular
        addition only (the Fourier circuit is addition's) and leaves it NaN for other tasks."""
        return bool(self.rows["trig_share"].notna().any())

    def chosen(self, n: int) -> tuple[int, ...]:
        """Indices (into the base batch) of the ``n`` networks to continue: the G-only ones in
        order (seeds first, then spares), filled up with the first others when too few are
        G-only (the rules then say the bases are not G-only)."""
        g = [i for i, ok in enumerate(self.rows["g_only"]) if ok]
        rest = [i for i in range(len(self.rows)) if i not in g]
        return tuple(sorted((g + rest)[:n]))


def quick_base() -> BaseConfig:
    """The quick scale's base networks: two spare seeds replace bases that are not G-only."""
    return BaseConfig(QUICK, spare_seeds=(3, 4))


def final_rows(run_dir: Path) -> list[dict]:
    """The last metric row of every model of a run folder (from its checkpoint)."""
    state = load_checkpoint(run_dir / CHECKPOINT_NAME)
    last: dict[int, dict] = {}
    for row in state.rows:
        last[row["model"]] = row
    return [last[k] for k in sorted(last)]


def convergence_table(run_dir: Path, *, window: float = 0.25, acc_tol: float = 0.05,
                      norm_tol: float = 0.05) -> pd.DataFrame:
    """Per model: ``acc_change`` (|test acc at the end - at the start of the last ``window``|),
    ``norm_change`` (relative), and ``converged`` (both below their tolerances)."""
    in_range("window", window, 0.0, 1.0, lo_open=True)
    state = load_checkpoint(run_dir / CHECKPOINT_NAME)
    df = pd.DataFrame(state.rows)
    out = []
    for model, g in df.groupby("model", sort=True):
        g = g.sort_values("step")
        last = g.iloc[-1]
        first = g[g["step"] >= (1.0 - window) * last["step"]].iloc[0]
        acc = pd.to_numeric(g["test_acc"], errors="coerce")
        a_last, a_first = acc.iloc[-1], acc[g["step"] >= first["step"]].iloc[0]
        acc_change = float(abs(a_last - a_first)) if np.isfinite(a_last) and np.isfinite(a_first) else 0.0
        norm_change = float(abs(last["param_norm"] - first["param_norm"]) / last["param_norm"])
        out.append({"model": int(model), "acc_change": acc_change, "norm_change": norm_change,
                    "converged": bool(acc_change < acc_tol and norm_change < norm_tol)})
    return pd.DataFrame(out)


def train_base(config: BaseConfig, out_dir: Path, *, progress: bool = True, resume: bool = True,
               trainer: Trainer | None = None) -> BaseResult:
    """Train (or reuse) the base networks in ``out_dir`` and measure their trig share."""
    from circeff.empirical.circuits import analyse_run  # Fourier analysis of the final weights

    run_dir = Path(out_dir)
    train_or_reuse(config.train_config(), run_dir, progress=progress, resume=resume, trainer=trainer)
    rows = []
    fourier = config.task == "add"
    circuits = {m.model: m for m in analyse_run(run_dir)} if fourier else {}
    for row in final_rows(run_dir):
        share = circuits[row["model"]].trig_share if fourier else float("nan")
        rows.append({"seed": row["seed"], "train_acc": row["train_acc"],
                     "test_acc": row["test_acc"],
                     "param_norm": row["param_norm"], "trig_share": share,
                     "g_only": bool(fourier and share > config.g_only_share)})
    return BaseResult(run_dir=run_dir, rows=pd.DataFrame(rows))
