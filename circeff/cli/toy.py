"""`circeff toy` commands: the subweight toy model of Appendix C.

Every command writes machine-readable JSON (and a PNG where there is a figure) atomically
into the folder the user names. Bad values end as one line naming the option.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from circeff import io
from circeff.errors import ConfigError, RunError

app = typer.Typer(help="The toy model of Appendix C: two lookup-table circuits, subweights, "
                       "weight decay.", no_args_is_help=True)

_DEFAULT_STEPS = 50_000
MAX_STEPS = 10**9  # far beyond any toy run (the paper's use 1e5); a typo of extra digits is refused


def _option_name(field: str) -> str:
    """ToyConfig field -> CLI option: ``P_G`` -> ``--p-g``."""
    return "--" + field.lower().replace("_", "-")


@contextlib.contextmanager
def _named_options() -> Iterator[None]:
    """Re-raise a config's ConfigError with the option name the user typed."""
    try:
        yield
    except ConfigError as exc:
        if exc.field.startswith("--"):
            raise
        raise ConfigError(_option_name(exc.field), exc.allowed, exc.got) from None


def _write_figure(path: Path, fig) -> None:  # noqa: ANN001 - matplotlib Figure
    from circeff.toy.plots import figure_png

    io.atomic_write_bytes(path, figure_png(fig))


def _write_json_and_png(out: Path, name: str, data: dict, plot: Callable[[dict], object]) -> None:
    """Write ``data`` as ``out/<name>.json`` and ``plot(data)`` as ``out/<name>.png``."""
    io.ensure_dir(out)
    io.write_json(out / f"{name}.json", data)
    _write_figure(out / f"{name}.png", plot(data))


@app.command("run")
def run_cmd(
    n_classes: int = typer.Option(113, "--n-classes", help="number of labels n"),
    p_g: float = typer.Option(1.0, "--p-g", help="P_G: norm of G at unit weight"),
    p_m: float = typer.Option(2.0, "--p-m", help="P_M: norm of M at unit weight"),
    kappa: float = typer.Option(1.2, "--kappa", help="norm of w C is |w|^(1/kappa) P"),
    q: float = typer.Option(2.0, "--q", help="weight-decay norm exponent"),
    alpha: float = typer.Option(0.005, "--alpha", help="weight-decay strength"),
    lr: float = typer.Option(0.01, "--lr", help="learning rate"),
    steps: int = typer.Option(_DEFAULT_STEPS, "--steps", min=0, max=MAX_STEPS, help="gradient steps"),
    w_g1: float = typer.Option(0.0, "--w-g1", help="initial w_G1"),
    w_g2: float = typer.Option(0.005, "--w-g2", help="initial w_G2 (G's speed)"),
    w_m1: float = typer.Option(0.0, "--w-m1", help="initial w_M1"),
    w_m2: float = typer.Option(1.0, "--w-m2", help="initial w_M2 (M's speed)"),
    wd_eps: float = typer.Option(0.0, "--wd-eps", help="smoothing of |w| in weight decay (needed if kappa > q)"),
    n_record: int = typer.Option(200, "--n-record", help="about this many log-spaced recorded steps"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="write the curves here as JSON"),
) -> None:
    """Run one configuration; print its grokking step; optionally write the curves as JSON."""
    from circeff.toy.simulate import ToyConfig, simulate_one

    with _named_options():
        cfg = ToyConfig(n_classes=n_classes, P_G=p_g, P_M=p_m, kappa=kappa, q=q, alpha=alpha, lr=lr,
                        steps=steps, w_G1=w_g1, w_G2=w_g2, w_M1=w_m1, w_M2=w_m2, wd_eps=wd_eps)
        rec = simulate_one(cfg, n_record=n_record)
    if json_path is not None:
        io.write_json(json_path, rec)
    print(f"fit_step={rec['fit_step']} grokking_step={rec['grokking_step']} "
          f"final train_loss={rec['train_loss'][-1]:.4g} test_loss={rec['test_loss'][-1]:.4g} "
          f"w_G={rec['w_G'][-1]:.4g} w_M={rec['w_M'][-1]:.4g}")


@app.command("figure2")
def figure2_cmd(
    out: Path = typer.Option(..., "--out", help="folder for fig2.png and fig2.json"),
    steps: int = typer.Option(_DEFAULT_STEPS, "--steps", min=0, max=MAX_STEPS, help="gradient steps per panel"),
    n_record: int = typer.Option(200, "--n-record", help="recorded steps per curve"),
) -> None:
    """Figure 2: (a) all ingredients, (b) G less efficient, (c) no slow/fast difference."""
    from circeff.toy.experiments import figure2_data
    from circeff.toy.plots import plot_figure2

    with _named_options():
        data = figure2_data(steps=steps, n_record=n_record)
    for key, rec in data["panels"].items():
        if rec["diverged_step"] is not None:
            raise RunError(f"panel {key}: diverged (overflow) at step {rec['diverged_step']}")
    _write_json_and_png(out, "fig2", data, plot_figure2)
    for key, rec in data["panels"].items():
        print(f"panel {key}: fit_step={rec['fit_step']} grokking_step={rec['grokking_step']} "
              f"final test_loss={rec['test_loss'][-1]:.4g}")
    print(f"wrote {out / 'fig2.png'} and {out / 'fig2.json'}")


@app.command("phase")
def phase_cmd(
    out: Path = typer.Option(..., "--out", help="folder for phase.png, phase.json, phase.csv"),
    p_ratio_min: float = typer.Option(0.25, "--p-ratio-min", help="smallest P_G / P_M"),
    p_ratio_max: float = typer.Option(2.0, "--p-ratio-max", help="largest P_G / P_M"),
    n_p: int = typer.Option(22, "--n-p", help="grid points in P_G / P_M (log-spaced)"),
    w_ratio_min: float = typer.Option(1e-3, "--w-ratio-min", help="smallest w_G2(0) / w_M2(0)"),
    w_ratio_max: float = typer.Option(1.0, "--w-ratio-max", help="largest w_G2(0) / w_M2(0)"),
    n_w: int = typer.Option(19, "--n-w", help="grid points in w_G2 / w_M2 (log-spaced)"),
    steps: int = typer.Option(100_000, "--steps", min=0, max=MAX_STEPS, help="gradient steps per cell"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar"),
) -> None:
    """Phase diagram: grokking delay and final test loss over efficiency x speed ratios."""
    from circeff.toy.experiments import PhaseGrid, phase_data
    from circeff.toy.plots import plot_phase

    with _named_options():
        grid = PhaseGrid(p_ratio_min=p_ratio_min, p_ratio_max=p_ratio_max, n_p=n_p,
                         w_ratio_min=w_ratio_min, w_ratio_max=w_ratio_max, n_w=n_w, steps=steps)
        data = phase_data(grid, progress=progress)
    io.ensure_dir(out)
    rows = data.pop("rows")
    io.write_json(out / "phase.json", data)
    io.write_csv(out / "phase.csv", rows)
    _write_figure(out / "phase.png", plot_phase(data))
    grokked = sum(r["grokking_step"] is not None for r in rows)
    diverged = sum(r["diverged_step"] is not None for r in rows)
    print(f"{len(rows)} configurations: {grokked} grokked, {diverged} diverged")
    print(f"wrote {out / 'phase.png'}, {out / 'phase.json'}, {out / 'phase.csv'}")


def _dataset_size_data(experiment: type, data: Callable[..., dict], *, d_ratios: Optional[str], p_g: float,
                       p_m_ref: float, d_ref: float, beta: float, **fields: object) -> dict:
    """Build the dataset-size law and ``experiment(law, d_ratios, **fields)`` from the options of
    `toy ungrok` / `toy semigrok` and return ``data(experiment)``; bad values name the option."""
    from circeff.toy.dataset import DatasetSizeLaw
    from circeff.validate import parse_float_list

    with _named_options():
        law = DatasetSizeLaw(P_G=p_g, P_M_ref=p_m_ref, D_ref=d_ref, beta=beta)
        ratios = experiment.d_ratios if d_ratios is None else parse_float_list("--d-ratios", d_ratios)
        return data(experiment(law=law, d_ratios=ratios, **fields))


# The dataset-size law's options, shared by `toy ungrok` and `toy semigrok`.
LawPG = Annotated[float, typer.Option("--p-g", help="P_G (independent of D)")]
LawPMRef = Annotated[float, typer.Option("--p-m-ref", help="P_M at D = D_ref")]
LawDRef = Annotated[float, typer.Option("--d-ref", help="reference dataset size")]
LawBeta = Annotated[float, typer.Option("--beta", help="P_M(D) = P_M_ref (D / D_ref)^beta")]


@app.command("ungrok")
def ungrok_cmd(
    out: Path = typer.Option(..., "--out", help="folder for ungrok.png and ungrok.json"),
    pretrain_steps: int = typer.Option(50_000, "--pretrain-steps", min=0, max=MAX_STEPS, help="steps at D_ref (grokking)"),
    steps: int = typer.Option(100_000, "--steps", min=0, max=MAX_STEPS, help="steps at each smaller D"),
    d_ratios: Optional[str] = typer.Option(None, "--d-ratios", help="D / D_crit values, e.g. 0.25,0.5,2"),
    p_g: LawPG = 1.0,
    p_m_ref: LawPMRef = 2.0,
    d_ref: LawDRef = 4000.0,
    beta: LawBeta = 0.5,
) -> None:
    """Toy ungrokking: from the grokked state, keep training at D below and above D_crit."""
    from circeff.toy.dataset import UngrokExperiment, ungrok_data
    from circeff.toy.plots import plot_ungrok

    data = _dataset_size_data(UngrokExperiment, ungrok_data, d_ratios=d_ratios, p_g=p_g, p_m_ref=p_m_ref,
                              d_ref=d_ref, beta=beta, pretrain_steps=pretrain_steps, steps=steps)
    _write_json_and_png(out, "ungrok", data, plot_ungrok)
    print(f"D_crit = {data['D_crit']:g}")
    for r in data["runs"]:
        print(f"D = {r['D']:g} ({r['d_ratio']:g} D_crit): test loss {r['start_test_loss']:.3g} -> "
              f"{r['final_test_loss']:.3g}")
    print(f"wrote {out / 'ungrok.png'} and {out / 'ungrok.json'}")


@app.command("semigrok")
def semigrok_cmd(
    out: Path = typer.Option(..., "--out", help="folder for semigrok.png and semigrok.json"),
    steps: int = typer.Option(200_000, "--steps", min=0, max=MAX_STEPS, help="steps from scratch at each D"),
    d_ratios: Optional[str] = typer.Option(None, "--d-ratios", help="D / D_crit values, e.g. 0.8,1,1.25"),
    q_mixture: float = typer.Option(2.0, "--q-mixture", help="q > kappa: stable mixture"),
    q_sharp: float = typer.Option(1.2, "--q-sharp", help="q <= kappa: comparison (winner takes all)"),
    p_g: LawPG = 1.0,
    p_m_ref: LawPMRef = 2.0,
    d_ref: LawDRef = 4000.0,
    beta: LawBeta = 0.5,
) -> None:
    """Toy semi-grokking: near D_crit with q > kappa the toy settles at a middling test loss."""
    from circeff.toy.dataset import SemigrokExperiment, semigrok_data
    from circeff.toy.plots import plot_semigrok

    data = _dataset_size_data(SemigrokExperiment, semigrok_data, d_ratios=d_ratios, p_g=p_g, p_m_ref=p_m_ref,
                              d_ref=d_ref, beta=beta, steps=steps, q_mixture=q_mixture, q_sharp=q_sharp)
    _write_json_and_png(out, "semigrok", data, plot_semigrok)
    print(f"D_crit = {data['D_crit']:g}")
    for r in data["mixture"]:
        print(f"q={r['q']:g} D = {r['d_ratio']:.3g} D_crit: final test loss {r['final_test_loss']:.3g}, "
              f"G share {r['final_G_share']:.3g}")
    print(f"wrote {out / 'semigrok.png'} and {out / 'semigrok.json'}")

