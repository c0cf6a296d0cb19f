"""The config of ``circeff reproduce``: every experiment's config, taken from the presets table.

:func:`reproduce_config` composes the entries of :mod:`circeff.empirical.presets` for a preset
(``cpu``, ``paper``) and scale (``quick``, ``full``, ``tiny``); nothing is overridden here except
the device and, for the paper smoke test, steps and seeds cut down by a factor stated below.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from circeff.analysis.stats import to_plain
from circeff.empirical import presets
from circeff.empirical.config import ModelConfig, Training
from circeff.empirical.experiments import allocation as alloc
from circeff.empirical.experiments import efficiency as eff
from circeff.empirical.experiments import fig10 as f10
from circeff.empirical.experiments import figure8 as fig8
from circeff.empirical.experiments import progress as prog
from circeff.empirical.experiments import semigrokking as semi
from circeff.empirical.experiments import ungrokking as ung
from circeff.empirical.experiments.predictions_common import TINY_MODEL, BaseConfig, config_fingerprint
from circeff.errors import ConfigError
from circeff.validate import integer_at_least

__all__ = ["EXPERIMENT_PRESETS", "PRESETS", "SCALES", "ReproduceConfig", "comparable", "experiment_config",
           "fingerprint", "reproduce_config"]

PRESETS = ("cpu", "paper")
SCALES = ("quick", "full", "tiny")


@dataclass(frozen=True)
class ReproduceConfig:
    """Every stage's config. ``ungrokking.base`` and ``fig10.base`` must be the same networks
    (stage ``base``), and every empirical stage must use the same P (so that D_crit from P1 and
    from ungrokking, and the allocation prediction, are about the same dataset)."""

    preset: str
    scale: str
    theory_seed: int = 0
    toy_steps: int | None = None
    progress: prog.ProgressConfig = field(default_factory=prog.ProgressConfig)
    efficiency: eff.EfficiencyConfig = field(default_factory=eff.EfficiencyConfig)
    ungrokking: ung.UngrokkingConfig = field(default_factory=ung.UngrokkingConfig)
    semigrok: semi.SemigrokConfig = field(default_factory=semi.SemigrokConfig)
    fig10: f10.Fig10Config = field(default_factory=f10.Fig10Config)
    allocation: alloc.AllocationConfig = field(default_factory=alloc.AllocationConfig)
    figure8: fig8.Figure8Config | None = None  # ungrokking on the other tasks (the full scale)
    controls_n: int = 100       # synthetic tables per truth and verdict (the controls' cost)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError("--preset", f"must be one of {', '.join(PRESETS)}", self.preset)
        if self.scale not in SCALES:
            raise ConfigError("--scale", f"must be one of {', '.join(SCALES)}", self.scale)
        if not isinstance(self.controls_n, int) or self.controls_n < 1:
            raise ConfigError("controls_n", "must be an integer >= 1", self.controls_n)
        if self.ungrokking.base != self.fig10.base:
            raise ConfigError("fig10.base", "must equal ungrokking.base (one set of base networks)", "differs")
        ps = {"efficiency": self.efficiency.p, "ungrokking": self.ungrokking.base.p, "semigrok": self.semigrok.p}
        if len(set(ps.values())) != 1:
            raise ConfigError("p", "must be the same in P1, ungrokking, semi-grokking and Figure 10", ps)

    @property
    def base(self) -> BaseConfig:
        return self.ungrokking.base

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.figure8 is None:
            del d["figure8"]  # scales without the stage keep the config (and fingerprint) they had
        return d


def _with_device(config: ReproduceConfig, device: str) -> ReproduceConfig:
    def on(training):
        return replace(training, device=device)

    base = replace(config.base, training=on(config.base.training))
    return replace(config, progress=replace(config.progress, training=on(config.progress.training)),
                   efficiency=replace(config.efficiency, training=on(config.efficiency.training)),
                   ungrokking=replace(config.ungrokking, base=base), fig10=replace(config.fig10, base=base),
                   semigrok=replace(config.semigrok, training=on(config.semigrok.training)),
                   figure8=_figure8_of(config.figure8, replace(config.ungrokking, base=base)))


def _figure8_of(figure8: fig8.Figure8Config | None, ungrokking: ung.UngrokkingConfig,
                seeds: tuple[int, ...] | None = None) -> fig8.Figure8Config | None:
    """Figure 8 following addition's ungrokking settings (its template), if the scale has it;
    it keeps its own seeds unless ``seeds`` are given."""
    if figure8 is None:
        return None
    keep = seeds or figure8.ungrokking.base.training.seeds
    base = replace(ungrokking.base, training=replace(ungrokking.base.training, seeds=keep))
    return replace(figure8, ungrokking=replace(ungrokking, base=base))


def _paper_quick(config: ReproduceConfig) -> ReproduceConfig:
    """The paper's settings with a tenth of the steps and three seeds: a GPU smoke test."""
    def cut(training, seeds: int | None = 3):
        return replace(training, steps=training.steps // 10,
                       seeds=training.seeds[:seeds] if seeds else training.seeds)

    base = replace(config.base, training=cut(config.base.training))
    return replace(
        config, progress=replace(config.progress, training=cut(config.progress.training, None)),
        efficiency=replace(config.efficiency, training=cut(config.efficiency.training, None),
                           settle_iterations=config.efficiency.settle_iterations // 10),
        ungrokking=replace(config.ungrokking, base=base, decay_budget=config.ungrokking.decay_budget / 10),
        fig10=replace(config.fig10, base=base, seeds=config.fig10.seeds[:3],
                      decay_budget=config.fig10.decay_budget / 10),
        semigrok=replace(config.semigrok, training=cut(config.semigrok.training), sizes=config.semigrok.sizes[::4]),
        allocation=_allocation_cut(config.allocation))


def _allocation_cut(a: alloc.AllocationConfig) -> alloc.AllocationConfig:
    # the M networks follow P1's cut steps (so P1's are reused), and a tenth of the iterations
    d = a.disjoint
    return replace(a, disjoint=replace(d, m_steps=d.m_steps // 10, iterations=max(d.iterations // 10, 1)),
                   fig10_iterations=max(a.fig10_iterations // 10, 1))


def _tiny() -> ReproduceConfig:
    """P = 11 and a 16-wide model for tests of the plumbing (seconds; numbers mean nothing)."""
    t = Training(p=11, model=TINY_MODEL, lr=1e-2, steps=60, seeds=(0, 1), log_every=10, checkpoint_every=30)
    base = BaseConfig(t)
    return ReproduceConfig(
        preset="cpu", scale="tiny", toy_steps=2000,
        progress=prog.ProgressConfig(replace(t, steps=40, seeds=(0,)), train_frac=0.6, snapshot_every=20),
        efficiency=eff.EfficiencyConfig(t, m_train_sizes=(20, 40), g_train_sizes=(90, 110), alphas=(1e-3, 1e-2),
                                        settle_iterations=10, n_boot=100),
        ungrokking=ung.UngrokkingConfig(base=base, sizes=(10, 30, 60, 100), weight_decays=(1.0, 2.0),
                                        decay_budget=40.0, log_every=10, n_boot=50),
        semigrok=semi.SemigrokConfig(replace(t, steps=120, checkpoint_every=60), n_sizes=2),
        fig10=f10.Fig10Config(base=base, sizes=(10, 30, 60, 100), decay_budget=40.0, log_every=10, n_boot=50),
        # tiny networks never reach a trig share of 0.95, so every G stripe is taken
        allocation=alloc.AllocationConfig(
            alloc.DisjointConfig(base, sizes=(20, 40), g_only_sizes=(90,), seeds=(0, 1), m_steps=60, m_lr=1e-2,
                                 alphas=(1e-3, 1e-2), pair_alpha=1e-3, splits=((1.0, 0.5), (0.5, 1.0)),
                                 iterations=10),
            fig10_iterations=10, g_only_share=0.0, n_boot=50),
        controls_n=10)


# reproduce's (preset, scale) -> the scale of the presets table
_SCALE_OF = {("cpu", "quick"): "quick", ("cpu", "full"): "full", ("paper", "full"): "paper",
             ("paper", "quick"): "paper"}


def reproduce_config(preset: str = "cpu", scale: str = "quick", device: str = "cpu") -> ReproduceConfig:
    """The config of a preset (``cpu``, ``paper``) at a scale (``quick``, ``full``, ``tiny``).

    Every experiment's config is the presets table's entry (:mod:`circeff.empirical.presets`):
    cpu/quick uses the ``quick`` entries, cpu/full the ``full`` ones, paper/full the ``paper``
    ones, and paper/quick those with a tenth of the steps and fewer seeds (a GPU smoke test).
    """
    if preset not in PRESETS:
        raise ConfigError("--preset", f"must be one of {', '.join(PRESETS)}", preset)
    if scale not in SCALES:
        raise ConfigError("--scale", f"must be one of {', '.join(SCALES)}", scale)
    if scale == "tiny":
        return _with_device(replace(_tiny(), preset=preset), device)
    which = _SCALE_OF[(preset, scale)]
    config = ReproduceConfig(
        preset=preset, scale=scale if preset == "cpu" else "full",
        **{name: presets.get(name, which) for name in ("progress", "efficiency", "ungrokking", "semigrok", "fig10",
                                                       "allocation")})
    if (preset, scale) == ("cpu", "full"):
        # Figure 8 at the full scale only: nine tasks would take the quick run past its budget
        # with two of the seeds: nine tasks at every seed would cost four times addition's ungrokking
        base = config.ungrokking.base
        two = replace(config.ungrokking, base=replace(base, training=replace(base.training, seeds=base.seeds[:2])))
        config = replace(config, figure8=fig8.Figure8Config(two))
    if (preset, scale) == ("paper", "quick"):
        config = replace(_paper_quick(config), scale="quick")
    return _with_device(config, device)


def comparable(d: Any) -> Any:
    """The config as compared between runs: without device fields (a run may move device)."""
    if isinstance(d, dict):
        return {k: comparable(v) for k, v in d.items() if k != "device"}
    if isinstance(d, (list, tuple)):
        return [comparable(v) for v in d]
    return d


def fingerprint(config: ReproduceConfig) -> str:
    """Short hash of the config as compared between runs (marks which run a stage belongs to)."""
    return config_fingerprint(comparable(to_plain(config.to_dict())))


# ``circeff experiment --preset`` -> reproduce's (preset, scale)
EXPERIMENT_PRESETS = {"quick": ("cpu", "quick"), "full": ("cpu", "full"), "paper": ("paper", "full"),
                      "tiny": ("cpu", "tiny")}


def _model_of(model: ModelConfig, d_model: int | None, d_mlp: int | None) -> ModelConfig:
    """The model with new widths; the heads keep their number and share ``d_model`` evenly."""
    if d_model is not None and d_model % model.n_heads:
        raise ConfigError("d_model", f"must be a multiple of the {model.n_heads} heads", d_model)
    if d_model is not None:
        model = replace(model, d_model=d_model, d_head=d_model // model.n_heads)
    return model if d_mlp is None else replace(model, d_mlp=d_mlp)


def _scale(sizes: tuple[int, ...], factor: float) -> tuple[int, ...]:
    return tuple(sorted({max(2, round(d * factor)) for d in sizes}))


def _sizes_scaled(config: ReproduceConfig, factor: float) -> ReproduceConfig:
    """Every preset dataset size times ``factor`` (before P changes, so checks wait for the new P)."""
    import dataclasses

    def scaled(obj: Any, names: tuple[str, ...]) -> Any:
        changes = {n: _scale(getattr(obj, n), factor) for n in names if getattr(obj, n, ())}
        # bypass validation here: the sizes are checked against the new P when it is set
        new = copy.copy(obj)
        for n, v in changes.items():
            object.__setattr__(new, n, v)
        return new

    size_fields = lambda obj: tuple(f.name for f in dataclasses.fields(obj)  # noqa: E731
                                    if f.name.endswith("sizes") and isinstance(getattr(obj, f.name), tuple))
    return replace(config, efficiency=scaled(config.efficiency, size_fields(config.efficiency)),
                   ungrokking=scaled(config.ungrokking, ("sizes",)), fig10=scaled(config.fig10, ("sizes",)),
                   semigrok=scaled(config.semigrok, ("sizes",)))


def experiment_config(preset: str = "quick", device: str = "cpu", *, task: str | None = None, p: int | None = None,
                      lr: float | None = None, d_model: int | None = None, d_mlp: int | None = None,
                      seeds: tuple[int, ...] | None = None, train_frac: float | None = None,
                      base_steps: int | None = None, ungrokking_sizes: tuple[int, ...] | None = None,
                      fig10_sizes: tuple[int, ...] | None = None, semigrok_sizes: tuple[int, ...] | None = None,
                      weight_decays: tuple[float, ...] | None = None, decay_budget: float | None = None,
                      steps: int | None = None, weight_decay: float | None = None) -> ReproduceConfig:
    """The reproduce config of ``circeff experiment --preset`` with the command's options.

    ``task`` other than addition makes it Figure 8's ungrokking of that one task (its bases are
    checked on held-out pairs; :mod:`circeff.empirical.experiments.figure8`).
    The shared settings (P, lr, model widths, seeds, device) change in every stage, so that
    the stages stay about the same networks and dataset, as in ``circeff reproduce``; the
    others change only the experiment they name: ``train_frac`` and ``base_steps`` the base
    networks, ``*_sizes`` the D' of the experiment they name, ``weight_decays``
    ungrokking, ``decay_budget`` the continuations, ``steps`` and ``weight_decay`` semi-grokking.
    """
    if preset not in EXPERIMENT_PRESETS:
        raise ConfigError("--preset", f"must be one of {', '.join(k for k in EXPERIMENT_PRESETS if k != 'tiny')}",
                          preset)
    config = reproduce_config(*EXPERIMENT_PRESETS[preset], device)
    if task is not None:
        from circeff.empirical.tasks import get_task

        get_task(task)
    shared = {k: v for k, v in {"p": p, "lr": lr, "seeds": seeds}.items() if v is not None}

    def on(training: Training) -> Training:
        model = _model_of(training.model, d_model, d_mlp)
        return replace(training, model=model, **shared)

    if p is not None:
        # the preset's dataset sizes follow P as the same fractions of the pairs, so that every
        # stage stays valid (the options below set the named experiment's sizes exactly)
        config = _sizes_scaled(config, (p / config.base.p) ** 2)
    base = replace(config.base, training=on(config.base.training))
    if base_steps is not None:
        integer_at_least("base_steps", base_steps, 1)
        base = replace(base, training=replace(base.training, steps=base_steps))
    other_task = task not in (None, "add")
    if train_frac is not None and not other_task:
        base = replace(base, train_frac=train_frac)
    ung = replace(config.ungrokking, base=base, **{k: v for k, v in {
        "sizes": ungrokking_sizes, "weight_decays": weight_decays, "decay_budget": decay_budget}.items() if v is not None})
    f10 = replace(config.fig10, base=base, seeds=() if seeds is not None else config.fig10.seeds,
                  **{k: v for k, v in {"sizes": fig10_sizes, "decay_budget": decay_budget}.items() if v is not None})
    semi_training = on(config.semigrok.training)
    semi_training = replace(semi_training, **{k: v for k, v in {"steps": steps, "weight_decay": weight_decay}.items()
                                              if v is not None})
    semi_changes = {"sizes": semigrok_sizes} if semigrok_sizes is not None else {}
    if other_task:
        # another operation: its ungrokking is Figure 8's (bases checked on held-out pairs)
        return replace(config, figure8=fig8.Figure8Config(
            ung, tasks=(task,), **({} if train_frac is None else {"base_train_frac": train_frac})))
    config = replace(config, figure8=_figure8_of(config.figure8, ung, seeds))
    return replace(config, progress=replace(config.progress, training=replace(
                       on(config.progress.training), seeds=config.progress.training.seeds)),
                   efficiency=replace(config.efficiency, training=on(config.efficiency.training)),
                   ungrokking=ung, fig10=f10, semigrok=replace(config.semigrok, training=semi_training, **semi_changes))
