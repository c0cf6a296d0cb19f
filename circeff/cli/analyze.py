"""``circeff analyze``: circuits of trained runs (Appendix B decomposition, Figure 9).

- ``circeff analyze fourier RUN_DIR [--step S] [--model K] [--json PATH]``: per model of the
  run's final checkpoint (with ``--step``, of its snapshot at step S): parameter norm,
  accuracies, trig share, key frequencies, the G (trig) and M (mem) correct-logit proxies on
  train and test.
- ``circeff analyze progress RUN_DIR [--out DIR] [--model K]``: Figure 9 from the run's weight
  snapshots (``circeff train --snapshot-every N`` and ``circeff experiment progress`` write
  them): progress.csv and fig9.png.

Modular addition only; another task, a folder without a checkpoint (or without snapshots for
``progress``), a ``--step`` without a snapshot (the error lists the steps there are) and a
model index out of range are one-line errors with exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Analyse trained runs: Fourier decomposition and Figure 9.", no_args_is_help=True)


def _fmt(x: float) -> str:
    return "nan" if x != x else f"{x:.4g}"


def _print_table(results) -> None:  # noqa: ANN001 - list of ModelCircuits
    """One row per model; the correct logit splits as G (trig) + M (mem) on train and test."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    columns = ("model", "seed", "wd", "D", "step", "norm", "train_acc", "test_acc", "trig share",
               "key frequencies", "logit train", "G train", "M train", "logit test", "G test", "M test")
    for name in columns:
        table.add_column(name, justify="left" if name == "key frequencies" else "right")
    for m in results:
        p = m.proxies
        table.add_row(f"{m.model}{' (random labels)' if m.random_labels else ''}", str(m.seed),
                      f"{m.weight_decay:g}", str(m.train_size), str(m.step), f"{m.param_norm:.4g}",
                      _fmt(m.train_acc), _fmt(m.test_acc), f"{m.trig_share:.4f}",
                      ",".join(str(k) for k in m.key_frequencies), _fmt(m.correct_logit_train),
                      _fmt(p.trig_train), _fmt(p.mem_train), _fmt(m.correct_logit_test), _fmt(p.trig_test),
                      _fmt(p.mem_test))
    Console(width=250, soft_wrap=True).print(table)


@app.command("fourier")
def fourier(
    run_dir: Path = typer.Argument(..., help="Run folder of circeff train (holds its checkpoint)."),
    step: Optional[int] = typer.Option(None, "--step", help="Analyse the snapshot at this step (a run trained "
                                       "with --snapshot-every keeps them); default: the final checkpoint."),
    model: Optional[int] = typer.Option(None, "--model", help="Only this model of the batch (default: all)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON here."),
) -> None:
    """Trigonometric / memorisation decomposition (Appendix B) of a trained run's model(s)."""
    from circeff.empirical.circuits import analyse_run
    from circeff.io import write_json

    results = analyse_run(run_dir, None if model is None else [model], step=step)
    _print_table(results)
    if json_path is not None:
        from circeff.analysis.stats import to_plain
        write_json(json_path, to_plain({"run_dir": str(run_dir), "step": results[0].step, "models": [
            {**m.to_row(), "key_frequencies": list(m.key_frequencies),
             "frequency_norms": list(m.frequency_norms)} for m in results]}))


@app.command("progress")
def progress(
    run_dir: Path = typer.Argument(..., help="Run folder with snapshots/ (from circeff train --snapshot-every N "
                                   "or circeff experiment progress)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for progress.csv and fig9.png (default: RUN_DIR)."),
    model: int = typer.Option(0, "--model", help="Which model of the batch."),
) -> None:
    """Figure 9: G and M correct-logit proxies and parameter norm over training."""
    from circeff.empirical.experiments.progress import progress_table, write_progress

    rows = progress_table(run_dir, model)
    target = out if out is not None else run_dir
    write_progress(rows, target)
    first, last = rows.iloc[0], rows.iloc[-1]
    typer.echo(f"{len(rows)} snapshots, steps {int(first['step'])}..{int(last['step'])} -> "
               f"{target / 'progress.csv'}, {target / 'fig9.png'}")
    typer.echo(f"final: norm {last['param_norm']:.4g}, G train {_fmt(last['trig_train'])}, "
               f"M train {_fmt(last['mem_train'])}, test_acc {_fmt(last['test_acc'])}, "
               f"trig share {last['trig_share']:.3f}")
