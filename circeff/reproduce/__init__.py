"""``circeff reproduce``: every check and experiment of the paper in one resumable run, with a
report (``report.md``) and machine-readable verdicts (``summary.json``).

The stages (:mod:`circeff.reproduce.stages`) run in order, each in its own subfolder of the out
folder (``DIR/<stage>/``), and each returns a typed :class:`~circeff.reproduce.results.StageResult`.

Resuming: a stage folder keeps the run store's markers (:mod:`circeff.sweep.store`, the same
ones ``circeff sweep`` uses): a finished stage leaves ``done.json`` (its result and the config
fingerprint) and is skipped on a rerun, a failed one ``failed.json`` with its error; an unfinished one is run again, and the engine continues its batches from
their checkpoints. ``DIR/reproduce_config.json`` records the config; a rerun with a different
config stops with a one-line error unless ``force`` (which deletes the stage folders first;
:mod:`circeff.reproduce.outdir`).

Verdicts: ``summary.json["verdicts"]`` has exactly the keys ``P1, P2, P3, P4, fig10a,
allocation``, each with a boolean ``holds``, the reason, the numbers behind it and the rule's
parameters (``rule``), computed from the data. ``summary.json["stage_verdicts"]`` has the
verdicts a stage adds beyond those, in the same form: Figure 8's P2 and P3 per task
(``"P2 sub"``, ``"P3 sub"``, ...). A stage that fails (for example a fit that is
impossible on too few accepted networks) is reported with its error and its verdicts do not
hold; the other stages still run.

Controls: ``summary.json["controls"]`` has, per verdict, the false-accept rate (on synthetic
tables under a named alternative that violates the prediction) and the false-reject rate
(under the prediction), both measured on the run's own design and noise
(:func:`circeff.reproduce.stages.measure_run_controls`). ``summary.json["settings"]`` has,
per stage, P, the model widths, lr, steps and seeds the verdicts rest on.

Scales: ``quick`` (the default), ``full`` and ``tiny`` (for tests only: P = 11, a 16-wide model,
tens of steps; its numbers mean nothing). ``circeff presets`` lists what each sets; every run's
stage times are recorded in its ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from circeff.analysis.robustness import with_float_order
from circeff.analysis.stats import to_plain
from circeff.analysis.verdicts import Verdict
from circeff.empirical.config import cpu_block_size
from circeff.empirical.backend import IN_PROCESS, Trainer
from circeff.errors import ConfigError, RunError
from circeff.io import atomic_write_text, ensure_dir, read_json, write_json
from circeff.reproduce.config import PRESETS, SCALES, ReproduceConfig, fingerprint, reproduce_config
from circeff.reproduce.outdir import prepare_out
from circeff.reproduce.results import StageResult
from circeff.reproduce.stages import STAGES as _STAGES
from circeff.reproduce.stages import VERDICT_KEYS, Context, settings_of, stage
from circeff.sweep.store import DONE_FILE, RunStatus, mark_done, mark_failed, status_of

__all__ = ["PRESETS", "SCALES", "STAGES", "VERDICT_KEYS", "ReproduceConfig", "StageResult", "prepare_out",
           "reproduce_config", "run_reproduce", "verdict_entry"]



# --float-check's second run: its folder inside the out folder, and its CPU block size (the
# default is 1024, above every quick and full dataset, so the default sums each batch in one block)
FLOAT_ORDER_DIR = "float-order"
FLOAT_CHECK_BLOCK = 256

# The version of the code that decides (rules, controls, robustness checks). A stage's done
# marker carries it beside the config's fingerprint, so a stage finished under another version
# decides again on the networks it kept (its training time still counts): a result on disk is
# never reported under rules that did not make it. Raise it with every change that can move a
# verdict or its numbers. 2: P1's power is measured on the G networks the run kept; P3 is
# undecided where its slope interval straddles the tolerance; P2 judges a band leaving the grid
# on its part inside the grid.
RULES_VERSION = 2


def stage_stamp(config: ReproduceConfig) -> str:
    """What a stage's done marker must carry to be reused: the config and the rules' version."""
    return f"{fingerprint(config)}+rules{RULES_VERSION}"


# the stages every scale runs, in order (Figure 8 follows where a scale configures it)
STAGES = tuple(s.name for s in _STAGES if not s.optional)


def run_stage(ctx: Context, name: str, stamp: str, results: dict[str, StageResult]) -> StageResult:
    """Run stage ``name`` with the ``results`` so far of the stages it reads, or restore it from
    its ``done.json`` when a run of this config finished it."""
    out = ensure_dir(ctx.out / name)
    earlier_s = 0.0
    if status_of(out) is RunStatus.DONE:
        saved = read_json(out / DONE_FILE).get("summary") or {}
        if saved.get("fingerprint") == stamp and "result" in saved:
            result = StageResult.from_dict(saved["result"])
            result.skipped = True
            return result
        if "result" in saved:  # finished under other rules: its networks are reused, so its time counts
            earlier = StageResult.from_dict(saved["result"])
            earlier_s = earlier.seconds + earlier.earlier_s
    t0 = time.perf_counter()
    try:
        this = stage(name)
        # a needed stage that failed may still have left what this one reads (its trained
        # networks); the stage says so itself when it finds nothing to read
        result = this.run(ctx, out, {n: results[n] for n in this.needs + this.reads if n in results})
    except (RunError, ConfigError) as exc:
        result = StageResult(name, status="failed", error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - one stage's bug must not lose the other stages' results
        last = traceback.extract_tb(exc.__traceback__)[-1]
        result = StageResult(name, status="failed",
                             error=f"{type(exc).__name__}: {exc} (at {Path(last.filename).name}:{last.lineno})")
    result.seconds = round(time.perf_counter() - t0, 2)
    result.earlier_s = earlier_s
    for key in stage(name).verdicts:
        if not result.done or result.verdict(key) is None:
            result.verdicts = [v for v in result.verdicts if v.key != key]
            result.verdicts.append(Verdict(key, False, f"stage {name} failed: {result.error}", {"stage_failed": True}, {},
                                           undecided=True))
    if result.done:
        mark_done(out, {"fingerprint": stamp, "result": result.to_dict()})
    else:
        (out / DONE_FILE).unlink(missing_ok=True)  # a done marker of an earlier config must not survive
        mark_failed(out, result.error or "failed")
    return result


def _settings(config: ReproduceConfig, results: dict[str, StageResult]) -> dict[str, Any]:
    """The settings of each stage that trains one configuration of networks (stated from its
    config even when the stage failed)."""
    out = {}
    for s in _STAGES:
        cfg = getattr(config, s.configs[0]) if s.configs and not s.optional else None
        own = {f.name for f in dataclasses.fields(cfg)} if dataclasses.is_dataclass(cfg) else set()
        if own & {"training", "base"}:  # a config that states its own training (allocation reuses others')
            r = results.get(s.name)
            out[s.name] = r.settings if r is not None and r.settings else settings_of(cfg)
    return out


def verdict_entry(v: Verdict) -> dict[str, Any]:
    """A verdict as ``summary.json`` holds it: ``outcome`` (holds, does not hold, undecided),
    ``holds``, ``robustness`` (label and checks), ``criteria``, ``reason``, its numbers, and ``rule``."""
    return to_plain({"outcome": v.outcome, "holds": bool(v.holds), "robustness": v.robustness,
                     "criteria": list(v.criteria), "reason": v.reason, **v.numbers, "rule": v.rule})


def _run_stages(ctx: Context, chosen: list[str], stamp: str, desc: str) -> dict[str, StageResult]:
    """Run (or restore) the ``chosen`` stages in order, each with the results before it."""
    from circeff.progress import bar as progress_bar

    results: dict[str, StageResult] = {}
    bar = progress_bar(chosen, desc=desc, unit="stage", disable=not ctx.progress, dynamic_ncols=True)
    for name in bar:
        bar.set_postfix_str(stage(name).title)
        results[name] = run_stage(ctx, name, stamp, results)
    bar.close()
    return results


def _stages_s(results: dict[str, StageResult]) -> float:
    """What the stages cost: each one's seconds in this call plus those of the earlier call that
    trained a stage decided again."""
    return round(sum(r.seconds + r.earlier_s for r in results.values()), 2)


def run_reproduce(config: ReproduceConfig, out_dir: str | Path, *, force: bool = False, progress: bool = True,
                  command: str = "", trainer: Trainer | None = None,
                  stages: tuple[str, ...] | None = None, float_check: bool = False) -> dict[str, Any]:
    """Run (or resume) every stage; write ``report.md`` and ``summary.json``; return the summary.

    ``stages``: only these (in the order of :data:`STAGES`; ``circeff experiment`` runs one
    experiment's stages this way); the summary then holds only their verdicts.

    ``trainer`` trains the engine batches (default: in this process); it changes where they
    train, never what they compute, so it is not part of the config.

    ``float_check``: run the same stages a second time in ``DIR/float-order/`` with the CPU
    engine's block size :data:`FLOAT_CHECK_BLOCK` instead of its default (only the order of the
    floating-point sums differs; in-process training only), and make every verdict's
    float-order robustness check against the second run's outcome. Without it that check is
    "not run", and no verdict can be called robust.
    """
    from circeff.report import write_report  # the markdown writer

    out = Path(out_dir)
    prepare_out(out, config, force)
    stamp = stage_stamp(config)
    ctx = Context(config, out, progress, trainer or IN_PROCESS)
    started = time.perf_counter()
    scale_stages = [s.name for s in _STAGES if not s.optional or getattr(config, s.configs[0]) is not None]
    chosen = [s for s in scale_stages if stages is None or s in stages]
    results = _run_stages(ctx, chosen, stamp, "reproduce")
    float_order: dict[str, Any] = {"run": False}
    if float_check:
        # the same stages again, differing only in the order of the engine's floating-point sums
        second = dataclasses.replace(ctx, out=out / FLOAT_ORDER_DIR)
        prepare_out(second.out, config, force)
        t1 = time.perf_counter()
        with cpu_block_size(FLOAT_CHECK_BLOCK):
            other = _run_stages(second, chosen, stamp, "float order")
        seen = {v.key: v for r in other.values() for v in r.verdicts}
        for r in results.values():
            r.verdicts = [with_float_order(v, seen.get(v.key)) for v in r.verdicts]
        # seconds is this call; stages_s what the second run cost, stages restored from an
        # earlier call included (as timings.stages_s for the first run)
        float_order = {"run": True, "block_size": FLOAT_CHECK_BLOCK, "folder": FLOAT_ORDER_DIR,
                       "seconds": round(time.perf_counter() - t1, 2),
                       "stages_s": _stages_s(other),
                       "outcomes": {k: v.outcome for k, v in seen.items()}}
    total = time.perf_counter() - started

    found = {v.key: v for r in results.values() for v in r.verdicts}
    keys = VERDICT_KEYS if stages is None else [k for s in chosen for k in stage(s).verdicts]
    verdicts = [found.get(k, Verdict(k, False, "not computed", {}, {}, undecided=True)) for k in keys]
    summary = to_plain({
        "command": command,
        "preset": config.preset, "scale": config.scale,
        "verdicts": {v.key: verdict_entry(v) for v in verdicts},
        # a stage's verdicts beyond the paper's predictions: Figure 8's P2 and P3 per task ("P2 sub")
        "stage_verdicts": {v.key: verdict_entry(v) for r in results.values() for v in r.verdicts
                           if v.key not in VERDICT_KEYS},
        "controls": {k: c for r in results.values() for k, c in r.controls.items()},
        "controls_n": config.controls_n,
        "float_order": float_order,
        "settings": _settings(config, results),
        # total_s is this call; stages_s adds up every stage's recorded time, skipped ones
        # included, and the earlier time of a stage decided again on networks trained before,
        # so a resumed run still says what the whole result cost
        "timings": {"total_s": round(total, 2),
                    "stages_s": _stages_s(results),
                    "stages": {n: {"seconds": r.seconds, "skipped": r.skipped, "status": r.status,
                                   "earlier_s": r.earlier_s}
                               for n, r in results.items()}},
        "stages": {n: {"status": r.status, "error": r.error, "figures": r.figures, "notes": r.notes,
                       "tables": r.to_dict()["tables"],
                       "estimates": {k: iv.to_dict() for k, iv in r.estimates.items()}}
                   for n, r in results.items()},
        "config": config.to_dict(),
        "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    })
    write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", write_report(summary, list(results.values()), verdicts))
    return summary
