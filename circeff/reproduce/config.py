"""The config of ``circeff reproduce``: every experiment's config, taken from the presets table.

Every command names a preset ``quick``, ``full`` or ``paper`` (:data:`PRESET_NAMES`, the scales
of :mod:`circeff.empirical.presets`); :func:`named_config` is that preset's config.

A config records two labels, ``preset`` (``cpu``, ``paper``) and ``scale`` (``quick``, ``full``,
``tiny``), the names of earlier versions (:data:`RECORDED_AS` maps each name to them), so that
the labels a run records mean what they always meant. An out folder written before the stages
and config fields took their experiments' names holds a different config: it is refused, and
replaced only with ``--force``. :func:`reproduce_config` composes the entries of the presets table for those
labels; nothing is overridden here except the device and, for the paper smoke test
(``--preset paper --smoke``), steps and seeds cut down by a factor stated below.
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

__all__ = ["EXPERIMENT_PRESETS", "PRESETS", "PRESET_NAMES", "RECORDED_AS", "SCALES",
           "ReproduceConfig", "comparable", "experiment_config", "fingerprint", "model_with_widths", "named_config",
           "preset_name", "reproduce_config"]

# the labels a config records (see the module's docstring); commands name presets by PRESET_NAMES
PRESETS = ("cpu", "paper")
SCALES = ("quick", "full", "tiny")

# what every command's --preset takes: the scales of the presets table
PRESET_NAMES = presets.SCALES
# preset name -> the (preset, scale) labels its config records; ``tiny`` (P = 11, for tests of
# the plumbing) is accepted by the commands but not listed in their help
RECORDED_AS = {"quick": ("cpu", "quick"), "full": ("cpu", "full"), "paper": ("paper", "full"),
               "tiny": ("cpu", "tiny")}
# names of earlier versions: a one-line error says what to type now
_RENAMED = {"cpu": "quick or full"}


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
    semigrokking: semi.SemigrokConfig = field(default_factory=semi.SemigrokConfig)
    fig10: f10.Fig10Config = field(default_factory=f10.Fig10Config)
    allocation: alloc.AllocationConfig = field(default_factory=alloc.AllocationConfig)
    figure8: fig8.Figure8Config | None = None  # ungrokking on the other tasks (the full scale)
    controls_n: int = 100       # synthetic tables per truth and verdict (the controls' cost)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError("preset label", f"must be one of {', '.join(PRESETS)}", self.preset)
        if self.scale not in SCALES:
            raise ConfigError("scale label", f"must be one of {', '.join(SCALES)}", self.scale)
        if not isinstance(self.controls_n, int) or self.controls_n < 1:
            raise ConfigError("controls_n", "must be an integer >= 1", self.controls_n)
        if self.ungrokking.base != self.fig10.base:
            raise ConfigError("fig10.base", "must equal ungrokking.base (one set of base networks)", "differs")
        ps = {"efficiency": self.efficiency.p, "ungrokking": self.ungrokking.base.p, "semigrokking": self.semigrokking.p}
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
                   semigrokking=replace(config.semigrokking, training=on(config.semigrokking.training)),
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
        semigrokking=replace(config.semigrokking, training=cut(config.semigrokking.training), sizes=config.semigrokking.sizes[::4]),
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
        efficiency=eff.EfficiencyConfig(t, m_train_sizes=(20, 40), g_train_sizes=(90, 110), g_subset_sizes=(),
                                        alphas=(1e-3, 1e-2),
                                        settle_iterations=10, n_boot=100),
        ungrokking=ung.UngrokkingConfig(base=base, sizes=(10, 30, 60, 100), weight_decays=(1.0, 2.0),
                                        decay_budget=40.0, log_every=10, n_boot=50, min_steps=0),
        semigrokking=semi.SemigrokConfig(replace(t, steps=120, checkpoint_every=60), n_sizes=2),
        fig10=f10.Fig10Config(base=base, sizes=(10, 30, 60, 100), decay_budget=40.0, log_every=10),
        # tiny networks never reach a trig share of 0.95, so every G stripe is taken
        allocation=alloc.AllocationConfig(
            alloc.DisjointConfig(base, sizes=(20, 40), g_only_sizes=(90,), seeds=(0, 1), m_steps=60, m_lr=1e-2,
                                 m_weight_decay=1.0, alphas=(1e-3, 1e-2), pair_alpha=1e-3, splits=((1.0, 0.5), (0.5, 1.0)),
                                 iterations=10),
            fig10_iterations=10, g_only_share=0.0, n_boot=50),
        controls_n=10)


# reproduce's (preset, scale) -> the scale of the presets table
_SCALE_OF = {("cpu", "quick"): "quick", ("cpu", "full"): "full", ("paper", "full"): "paper",
             ("paper", "quick"): "paper"}


def reproduce_config(preset: str = "cpu", scale: str = "quick", device: str = "cpu") -> ReproduceConfig:
    """The config recorded as preset label ``cpu`` or ``paper`` at scale label ``quick``, ``full``
    or ``tiny`` (commands use :func:`named_config`).

    Every experiment's config is the presets table's entry (:mod:`circeff.empirical.presets`):
    cpu/quick uses the ``quick`` entries, cpu/full the ``full`` ones, paper/full the ``paper``
    ones, and paper/quick those with a tenth of the steps and fewer seeds (a GPU smoke test).
    """
    if preset not in PRESETS:
        raise ConfigError("preset label", f"must be one of {', '.join(PRESETS)}", preset)
    if scale not in SCALES:
        raise ConfigError("scale label", f"must be one of {', '.join(SCALES)}", scale)
    if scale == "tiny":
        return _with_device(replace(_tiny(), preset=preset), device)
    which = _SCALE_OF[(preset, scale)]
    config = ReproduceConfig(
        preset=preset, scale=scale if preset == "cpu" else "full",
        **{name: presets.get(name, which) for name in ("progress", "efficiency", "ungrokking", "semigrokking", "fig10",
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


def comparable(d: Any, ignore: frozenset[str] = frozenset({"device"})) -> Any:
    """The config as compared between runs: without the fields named in ``ignore``, at any
    depth (by default device fields: a run may move device)."""
    if isinstance(d, dict):
        return {k: comparable(v, ignore) for k, v in d.items() if k not in ignore}
    if isinstance(d, (list, tuple)):
        return [comparable(v, ignore) for v in d]
    return d


def fingerprint(config: ReproduceConfig) -> str:
    """Short hash of the config as compared between runs (marks which run a stage belongs to)."""
    return config_fingerprint(comparable(to_plain(config.to_dict())))


def check_preset(name: object, flag: str = "--preset") -> str:
    """``name`` if it is a preset a command takes (``tiny`` too), else a ConfigError naming ``flag``."""
    if name not in RECORDED_AS:
        hint = f" ({name} is gone: use {_RENAMED[name]})" if name in _RENAMED else ""
        raise ConfigError(flag, f"must be one of {', '.join(PRESET_NAMES)}{hint}", name)
    return str(name)


def named_config(name: str = "quick", device: str = "cpu", *, smoke: bool = False,
                 tiny: bool = False) -> ReproduceConfig:
    """The config of the preset ``name`` (``quick``, ``full``, ``paper``; ``tiny`` for tests).

    ``smoke`` (``paper`` only): the paper's settings with a tenth of the steps and three seeds,
    a GPU smoke test. ``tiny``: the tiny scale, recorded under the preset's label.
    """
    preset, scale = RECORDED_AS[check_preset(name)]
    if smoke:
        if name != "paper":
            raise ConfigError("--smoke", "is for --preset paper only", name)
        scale = "quick"
    return reproduce_config(preset, "tiny" if tiny else scale, device)


def preset_name(preset: str, scale: str) -> str:
    """What a user types for the recorded labels ``preset``, ``scale`` (``quick``, ``full``,
    ``paper``, ``paper --smoke``, ``tiny``): the name a report or a message should show."""
    if (preset, scale) == ("paper", "quick"):
        return "paper --smoke"
    if scale == "tiny":
        return "tiny"
    return next(name for name, labels in RECORDED_AS.items() if labels == (preset, scale))


# ``circeff experiment --preset`` -> the recorded labels (the same names as every command's)
EXPERIMENT_PRESETS = RECORDED_AS


def model_with_widths(model: ModelConfig, d_model: int | None = None, d_mlp: int | None = None,
                      n_heads: int | None = None) -> ModelConfig:
    """The model with new widths; the heads (``n_heads`` of them, else as many as before)
    share ``d_model`` evenly."""
    heads = model.n_heads if n_heads is None else integer_at_least("n_heads", n_heads, 1)
    width = model.d_model if d_model is None else d_model
    if d_model is not None and width % heads:
        raise ConfigError("d_model", f"must be a multiple of the {heads} heads", d_model)
    if n_heads is not None and width % heads:
        raise ConfigError("n_heads", f"must divide d_model, {width}", n_heads)
    if d_model is not None or n_heads is not None:
        model = replace(model, d_model=width, n_heads=heads, d_head=width // heads)
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
                   semigrokking=scaled(config.semigrokking, ("sizes",)))


def _unchecked(obj: Any, **changes: Any) -> Any:
    """``obj`` with ``changes``, without its checks (a stage the command does not run)."""
    new = copy.copy(obj)
    for name, value in changes.items():
        object.__setattr__(new, name, value)
    return new


class _Builder:
    """Builds the stage configs of one ``circeff experiment`` command.

    A stage the command runs is checked, and an error there names the option the user typed, or
    else says which preset value is out of range (never a flag the user did not give). A stage
    it does not run is carried along as the preset and the shared options make it (so that the
    out folder records one whole config, the same whichever experiment wrote it), checked where
    that succeeds and left unchecked where it does not: it is never trained.
    """

    def __init__(self, preset: str, runs: set[str] | None, p_from: int, p_to: int) -> None:
        self.preset, self.runs = preset, runs
        self.scaled = f", scaled to P = {p_to}" if p_to != p_from else ""

    def build(self, stage: str, typed: set[str], make, fallback) -> Any:  # noqa: ANN001 - two callables
        try:
            return make()
        except ConfigError as exc:
            if self.runs is not None and stage not in self.runs:
                return fallback()
            if exc.field.rsplit(".", 1)[-1] in typed:
                raise
            raise ConfigError(f"{stage} {exc.field} (the {self.preset} preset's{self.scaled}; no option you gave)",
                              exc.allowed, exc.got) from None


def experiment_config(preset: str = "quick", device: str = "cpu", *, task: str | None = None, p: int | None = None,
                      lr: float | None = None, d_model: int | None = None, d_mlp: int | None = None,
                      seeds: tuple[int, ...] | None = None, train_frac: float | None = None,
                      base_steps: int | None = None, ungrokking_sizes: tuple[int, ...] | None = None,
                      fig10_sizes: tuple[int, ...] | None = None, semigrokking_sizes: tuple[int, ...] | None = None,
                      weight_decays: tuple[float, ...] | None = None, decay_budget: float | None = None,
                      steps: int | None = None, weight_decay: float | None = None, n_heads: int | None = None,
                      semigrokking_window: tuple[float, float] | None = None, semigrokking_n_sizes: int | None = None,
                      budget_multiples: tuple[float, ...] | None = None,
                      stages: tuple[str, ...] | None = None) -> ReproduceConfig:
    """The reproduce config of ``circeff experiment --preset`` with the command's options.

    ``task`` other than addition makes it Figure 8's ungrokking of that one task (its bases are
    checked on held-out pairs; :mod:`circeff.empirical.experiments.figure8`).
    The shared settings (P, lr, model widths and heads, seeds, device) change in every stage, so
    that the stages stay about the same networks and dataset, as in ``circeff reproduce``; the
    others change only the experiment they name: ``train_frac`` and ``base_steps`` the base
    networks, ``*_sizes`` the D' of the experiment they name, ``weight_decays``
    ungrokking, ``decay_budget`` the continuations, ``steps``, ``weight_decay``,
    ``semigrokking_window`` (low and high factor of D_crit) and ``semigrokking_n_sizes`` semi-grokking.

    ``stages``: the reproduce stages the command runs (default: all). Only their configs
    (:attr:`circeff.reproduce.stages.Stage.configs`) are checked; the others are carried along unchecked where the preset
    does not fit the options (see :class:`_Builder`).
    """
    config = reproduce_config(*EXPERIMENT_PRESETS[check_preset(preset)], device)
    if task is not None:
        from circeff.empirical.tasks import get_task

        get_task(task)
    from circeff.reproduce.stages import stage  # the stage list imports this module

    runs = None if stages is None else {c for s in stages for c in stage(s).configs}
    builder = _Builder(preset, runs, config.base.p, config.base.p if p is None else p)
    shared = {k: v for k, v in {"p": p, "lr": lr, "seeds": seeds}.items() if v is not None}
    # the config fields the shared options set (the names their errors carry)
    shared_typed = set(shared) | ({"d_model", "d_head"} if d_model is not None else set()) \
        | ({"d_mlp"} if d_mlp is not None else set()) | ({"n_heads", "d_head"} if n_heads is not None else set())

    def on(training: Training) -> Training:
        model = model_with_widths(training.model, d_model, d_mlp, n_heads)
        return replace(training, model=model, **shared)

    def given(**values: Any) -> dict[str, Any]:
        return {k: v for k, v in values.items() if v is not None}

    if p is not None:
        # the preset's dataset sizes follow P as the same fractions of the pairs, so that every
        # stage stays valid (the options below set the named experiment's sizes exactly)
        config = _sizes_scaled(config, (p / config.base.p) ** 2)
    base_training = on(config.base.training)
    if base_steps is not None:
        integer_at_least("base_steps", base_steps, 1)
        base_training = replace(base_training, steps=base_steps)
    other_task = task not in (None, "add")
    base_changes = {"training": base_training, **given(train_frac=None if other_task else train_frac)}
    base_typed = shared_typed | set(given(train_frac=train_frac)) | ({"steps"} if base_steps is not None else set())
    base = builder.build("base", base_typed, lambda: replace(config.base, **base_changes),
                         lambda: _unchecked(config.base, **base_changes))
    ung_design = given(sizes=ungrokking_sizes, weight_decays=weight_decays, decay_budget=decay_budget,
                       convergence_multiples=budget_multiples)
    ung_changes = {"base": base, **ung_design}
    ung = builder.build("ungrokking", base_typed | set(ung_design) | set(given(weight_decay=weight_decays)),
                        lambda: replace(config.ungrokking, **ung_changes),
                        lambda: _unchecked(config.ungrokking, **ung_changes))
    if other_task:
        # another operation: its ungrokking is Figure 8's (bases checked on held-out pairs)
        return replace(config, figure8=fig8.Figure8Config(
            ung, tasks=(task,), **({} if train_frac is None else {"base_train_frac": train_frac})))
    f10_changes = {"base": base, "seeds": () if seeds is not None else config.fig10.seeds,
                   **given(sizes=fig10_sizes, decay_budget=decay_budget)}
    f10 = builder.build("fig10", base_typed | set(given(sizes=fig10_sizes, decay_budget=decay_budget)),
                        lambda: replace(config.fig10, **f10_changes), lambda: _unchecked(config.fig10, **f10_changes))
    semi_training = replace(on(config.semigrokking.training), **given(steps=steps, weight_decay=weight_decay))
    low, high = semigrokking_window if semigrokking_window is not None else (None, None)
    semi_design = given(sizes=semigrokking_sizes, n_sizes=semigrokking_n_sizes, low_factor=low, high_factor=high)
    semi_changes = {"training": semi_training, **semi_design}
    semi_typed = shared_typed | set(semi_design) | set(given(steps=steps, weight_decay=weight_decay))
    semi = builder.build("semigrokking", semi_typed, lambda: replace(config.semigrokking, **semi_changes),
                         lambda: _unchecked(config.semigrokking, **semi_changes))
    prog_training = replace(on(config.progress.training), seeds=config.progress.training.seeds)
    prog = builder.build("progress", shared_typed - {"seeds"},
                         lambda: replace(config.progress, training=prog_training),
                         lambda: _unchecked(config.progress, training=prog_training))
    eff_changes = {"training": on(config.efficiency.training)}
    eff = builder.build("efficiency", shared_typed, lambda: replace(config.efficiency, **eff_changes),
                        lambda: _unchecked(config.efficiency, **eff_changes))
    return replace(config, figure8=_figure8_of(config.figure8, ung, seeds), progress=prog, efficiency=eff,
                   ungrokking=ung, fig10=f10, semigrokking=semi)
