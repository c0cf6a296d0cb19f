"""The config of ``circeff reproduce``: every experiment's config, taken from the presets table.

:func:`reproduce_config` composes the entries of :mod:`circeff.empirical.presets` for a preset
(``cpu``, ``paper``) and scale (``quick``, ``full``, ``tiny``); nothing is overridden here except
the device and, for the paper smoke test, steps and seeds cut down by a factor stated below.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from circeff.analysis.stats import to_plain
from circeff.empirical import presets
from circeff.empirical.config import Training
from circeff.empirical.experiments import efficiency as eff
from circeff.empirical.experiments import fig10 as f10
from circeff.empirical.experiments import progress as prog
from circeff.empirical.experiments import semigrokking as semi
from circeff.empirical.experiments import ungrokking as ung
from circeff.empirical.experiments.predictions_common import TINY_MODEL, BaseConfig, config_fingerprint
from circeff.errors import ConfigError

__all__ = ["PRESETS", "SCALES", "ReproduceConfig", "comparable", "fingerprint", "reproduce_config"]

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
    q: float = 2.0
    allocation_n_boot: int = 2000
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
        return asdict(self)


def _with_device(config: ReproduceConfig, device: str) -> ReproduceConfig:
    def on(training):
        return replace(training, device=device)

    base = replace(config.base, training=on(config.base.training))
    return replace(config, progress=replace(config.progress, training=on(config.progress.training)),
                   efficiency=replace(config.efficiency, training=on(config.efficiency.training)),
                   ungrokking=replace(config.ungrokking, base=base), fig10=replace(config.fig10, base=base),
                   semigrok=replace(config.semigrok, training=on(config.semigrok.training)))


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
        semigrok=replace(config.semigrok, training=cut(config.semigrok.training), sizes=config.semigrok.sizes[::4]))


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
        allocation_n_boot=50, controls_n=10)


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
        **{name: presets.get(name, which) for name in ("progress", "efficiency", "ungrokking", "semigrok", "fig10")})
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
