"""``report.md`` of ``circeff reproduce``: markdown rendered from the stages' typed results.

The report computes nothing and knows no verdict's fields: it renders every
:class:`~circeff.analysis.verdicts.Verdict` the same way (holds, its numbers, its rule's
parameters, the reason) and every stage's figures, notes and :class:`~circeff.reproduce.results.Table`
objects. A renamed field is shown under its new name; it can never silently show as missing.
Figures are linked by paths relative to the out folder, so the folder can be moved or zipped.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from circeff.analysis.stats import Interval, to_plain

__all__ = ["VERDICT_TITLES", "controls_rows", "deciding_text", "fmt", "robust_text", "settings_rows", "stage_status", "summary_rows",
           "verdict_line", "write_report"]

VERDICT_TITLES = {
    "P1": "P1 efficiency: M needs more norm as D grows, G does not",
    "P2": "P2 ungrokking: a phase transition in final test accuracy at D_crit",
    "P3": "P3: the transition does not depend on weight decay",
    "P4": "P4 semi-grokking: runs memorise, then after a delay settle at middling test accuracy",
    "fig10a": "Figure 10a: the G:M ratio rises monotonically with D",
    "allocation": "Allocation: which account the settled ratios support, (b) one effective kappa (holds) or (a) "
                  "winner-take-all with per-circuit kappa (does not hold); D.4 on disjoint pairs; D_crit two ways",
}
# where each verdict's section goes: after the stage that produced it
_INTERVAL_KEYS = {f.name for f in dataclasses.fields(Interval)}  # the one interval record


def _is_interval(x: Any) -> bool:
    return isinstance(x, Mapping) and _INTERVAL_KEYS <= set(x)


def _is_records(x: Any) -> bool:
    return (isinstance(x, list) and bool(x) and all(isinstance(r, Mapping) for r in x)
            and all(r.keys() == x[0].keys() for r in x))


def fmt(x: Any, digits: int = 4) -> str:
    """One value as a table cell: intervals as ``value [lo, hi]`` (None ends unbounded), numbers
    to ``digits`` significant digits, booleans yes/no, mappings as ``key: value`` pairs."""
    x = to_plain(x)
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return f"{x:.{digits}g}" if math.isfinite(x) else str(x)
    if _is_interval(x):
        lo = "-inf" if x["lo"] is None else fmt(x["lo"], digits)
        hi = "inf" if x["hi"] is None else fmt(x["hi"], digits)
        return f"{fmt(x['value'], digits)} [{lo}, {hi}]"
    if isinstance(x, Mapping):
        return "; ".join(f"{k}: {fmt(v, digits)}" for k, v in x.items())
    if isinstance(x, list):
        return ", ".join(fmt(v, digits) for v in x)
    return str(x).replace("|", "/").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return out + [""]


def _records(title: str, records: list[Mapping[str, Any]]) -> list[str]:
    keys = list(records[0])
    return [f"**{title}**", ""] + _table(keys, [[r[k] for k in keys] for r in records])


def _verdict(v: Any) -> list[str]:
    """One verdict: a quantity table of its numbers and rule, then its per-row records as tables."""
    lines = [f"## {v.key}: {VERDICT_TITLES.get(v.key, v.key)}", ""]
    rows: list[list[Any]] = [["outcome", f"**{v.outcome}**"], ["robust or fragile", robust_text(v.robustness)]]
    rows += [[f"robustness: {k}", _check_text(c)] for k, c in ((v.robustness or {}).get("checks") or {}).items()]
    rows += [[f"deciding: {c['name']}", f"{fmt(c['value'])} against {fmt(c['threshold'])} "
              f"({fmt(c['margin_se'], 3)} SE on the passing side)"] for c in v.criteria]
    record_tables: list[str] = []
    for name, value in to_plain(v.numbers).items():
        if _is_records(value):
            record_tables += _records(name, value)
        else:
            rows.append([name, value])
    rows += [[f"rule: {name}", value] for name, value in to_plain(v.rule).items()]
    if v.reason:
        rows.append(["reason", v.reason])
    return lines + _table(["quantity", "value"], rows) + record_tables


def _check_text(c: Mapping[str, Any]) -> str:
    mark = {True: "passed", False: "failed", None: "not run"}[c.get("passed")]
    return f"{mark}: {c.get('detail', '')}"


def robust_text(robustness: Mapping[str, Any] | None) -> str:
    """``robust``, or ``fragile`` with the checks it did not pass."""
    if not robustness:
        return "not checked"
    if robustness["label"] == "robust":
        return "robust"
    return "fragile (" + ", ".join(k.replace("_", " ") for k in robustness.get("not_passed", [])) + ")"


def deciding_text(v: Any) -> str:
    """The deciding statistic of a verdict: the criterion closest to its threshold (holds) or
    the clearest failure, with its value, threshold and margin in standard errors (the
    robustness check's margins, which take the jackknife standard error where a statistic has
    none of its own)."""
    checked = (((v.robustness or {}).get("checks") or {}).get("margin") or {}).get("margins_se") or {}
    margins = {c["name"]: checked.get(c["name"], c.get("margin_se")) for c in v.criteria}
    known = [c for c in v.criteria if margins[c["name"]] is not None]
    if not known:
        return "-"
    # closest to passing's edge, or the clearest failure
    c = min(known, key=lambda c: margins[c["name"]])
    return f"{c['name']}: {fmt(c['value'], 3)} vs {fmt(c['threshold'], 3)} ({fmt(margins[c['name']], 2)} SE)"


def verdict_line(key: str, entry: Mapping[str, Any]) -> str:
    """One verdict of a summary as the commands print it: outcome, robust or fragile, reason."""
    return f"{key}: {entry['outcome']} ({robust_text(entry.get('robustness'))}) - {entry.get('reason', '')}"


def summary_rows(verdicts: Sequence[Any]) -> list[list[Any]]:
    """The report's top lines: each prediction, its outcome, robust or fragile, its deciding number."""
    return [[v.key, VERDICT_TITLES.get(v.key, v.key), f"**{v.outcome}**", robust_text(v.robustness),
             deciding_text(v)] for v in verdicts]


def _rate(r: Any) -> str:
    return "n/a" if not isinstance(r, Mapping) else f"{r['k']}/{r['n']} = {100 * r['value']:.3g}% [{100 * r['lo']:.3g}, {100 * r['hi']:.3g}]"


def controls_rows(controls: Mapping[str, Any]) -> list[list[Any]]:
    """Rows ``verdict, alternative, false accept, false reject, meets targets, seconds`` of a
    summary's ``controls`` (rates as ``k/n = %`` with their 95% Clopper-Pearson interval)."""
    rows = []
    for name, c in controls.items():
        if c.get("error"):
            rows.append([name, c["error"], "n/a", "n/a", "no", c.get("seconds")])
        else:
            rows.append([name, c["alternative"], _rate(c["false_accept"]), _rate(c["false_reject"]),
                         c["meets_targets"], c.get("seconds")])
    return rows


CONTROLS_HEADER = ["verdict", "alternative (false accept is accepting it)", "false accept", "false reject",
                   "meets targets (<= 5%, <= 20%)", "seconds"]
SETTINGS_HEADER = ["stage", "P", "d_model", "heads x d_head", "d_mlp", "lr", "steps", "seeds", "weight decay", "also"]
_SETTING_KEYS = ("P", "d_model", "n_heads", "d_head", "d_mlp", "lr", "steps", "seeds", "weight_decay")


def settings_rows(settings: Mapping[str, Any]) -> list[list[Any]]:
    """One row per stage of a summary's ``settings``: P, widths, lr, steps, seeds, weight decay
    and the stage's own design fields."""
    return [[stage, s["P"], s["d_model"], f"{s['n_heads']} x {s['d_head']}", s["d_mlp"], s["lr"], s["steps"],
             s["seeds"], s["weight_decay"], {k: v for k, v in s.items() if k not in _SETTING_KEYS}]
            for stage, s in settings.items()]


def _stage_body(result: Any) -> list[str]:
    lines = [f"![{caption}]({path})\n\n*{caption}*\n" for caption, path in result.figures.items()]
    if result.notes:
        lines += [*result.notes, ""]
    for table in result.tables:
        lines += [f"**{table.title}**", ""] + _table(table.header, table.rows)
    if result.error:
        lines += [f"Stage failed: {result.error}", ""]
    return lines


def stage_status(status: str, skipped: bool = False, earlier_s: float = 0.0) -> str:
    """A stage's status in words: skipped when this call restored it; decided again when it
    reused networks an earlier call trained (whose seconds are then not in this call's)."""
    if skipped:
        return f"{status} (skipped: done earlier)"
    if earlier_s:
        return f"{status} (decided again under changed rules on networks trained earlier, in {earlier_s:.0f} s)"
    return status


def write_report(summary: Mapping[str, Any], results: Sequence[Any], verdicts: Sequence[Any]) -> str:
    """The markdown report of one reproduce run: ``summary`` (run facts and timings), the
    stage ``results`` in order and the ``verdicts`` in their fixed order."""
    t = summary["timings"]
    from circeff.reproduce.config import preset_name
    from circeff.reproduce.stages import stage

    lines = [f"# Reproduction report: {preset_name(summary['preset'], summary['scale'])}", ""]
    lines += ["**Top line.** Each prediction's outcome (holds, does not hold, or undecided where the design "
              "cannot decide), whether it is robust (the same without any one seed, under a second order of "
              "floating-point sums, at least one standard error from its threshold, counts from two or more "
              "seeds) or fragile, and the number that decided it.", ""]
    lines += _table(["", "prediction", "outcome", "robust or fragile", "deciding number"], summary_rows(verdicts))
    t0 = (summary.get("config") or {}).get("efficiency", {}).get("training", {})
    if t0.get("model") and (t0["model"].get("d_model"), t0["model"].get("d_mlp"), t0.get("lr")) != (128, 512, 1e-3):
        m = t0["model"]
        lines += [f"**Model: not the paper's.** This scale trains a smaller model (d_model {m['d_model']}, "
                  f"{m['n_heads']} heads of {m['d_head']}, d_mlp {m['d_mlp']}, AdamW lr {t0['lr']:g}); the full and "
                  "paper scales use the paper's (d_model 128, 4 heads of 32, d_mlp 512, lr 1e-3).", ""]
    if summary.get("command"):
        lines += [f"Command: `{summary['command']}`", ""]
    lines += [f"Finished {summary['environment']['finished']} on {summary['environment']['platform']}; "
              f"all stages {t['stages_s']:.1f} s, wall time of this call {t['total_s']:.1f} s (stages skipped "
              "because they were done earlier count 0 in the second; their original time is in the stage "
              "table).", ""]
    if summary["scale"] != "full" or summary["preset"] != "paper":
        lines += ["Scale note: this is not the paper's scale (P = 113, the paper's model, millions of epochs). "
                  "Small P, a narrower model and short runs show the qualitative phenomena at best; a verdict "
                  "that does not hold here is reported as not holding, with its numbers.", ""]

    if summary.get("settings"):
        lines += ["## Settings of this run", "",
                  "The verdicts below rest on these settings (the paper: P = 113, d_model 128, 4 heads of 32, "
                  "d_mlp 512, lr 1e-3). Methods that depart from the paper: P1 settles each network by "
                  "minimising the loss plus (alpha/2)||theta||^2 with L-BFGS at a ladder of alpha, instead of "
                  "training at several AdamW weight decays (at tiny loss AdamW's equilibrium is set by its eps, "
                  "so varying its weight decay barely moved a network along its logit-norm curve); "
                  "every G-only network is trained from scratch at its own D and P1's slopes are clustered by seed; "
                  "the M proxy is the label-centred correct logit (the mean logit over classes subtracted), "
                  "so that a logit shared by every class does not count as memorisation.", ""]
        lines += _table(SETTINGS_HEADER, settings_rows(summary["settings"]))
    lines += ["## Verdicts", ""]
    lines += _table(["prediction", "outcome", "robust or fragile", "reason"],
                    [[v.key, f"**{v.outcome}**", robust_text(v.robustness), v.reason] for v in verdicts])
    if summary.get("controls"):
        lines += ["## Controls: how often each rule errs on this run's own design", "",
                  f"Each verdict's rule applied to {summary.get('controls_n', 'n')} synthetic tables drawn with "
                  "this run's grid, seeds and noise (estimated from its residuals) under a named alternative "
                  "that violates the prediction (false accept) and under the prediction (false reject).", ""]
        lines += _table(CONTROLS_HEADER, controls_rows(summary["controls"]))
    lines += ["## Stages and timings", ""]
    lines += _table(["stage", "status", "seconds", "error"],
                    [[r.name, stage_status(r.status, r.skipped, r.earlier_s), f"{r.seconds:.1f}",
                      r.error or ""] for r in results])
    fo = summary.get("float_order") or {}
    if fo.get("run"):
        lines += [f"The float-order second run (`{fo['folder']}/`, CPU block size {fo['block_size']}) took "
                  f"{fo.get('stages_s', fo['seconds']):.1f} s over its stages ({fo['seconds']:.1f} s in this call), "
                  "on top of the stages above.", ""]

    by_key = {v.key: v for v in verdicts}
    for r in results:
        keys = [v.key for v in r.verdicts if v.key in by_key]
        if keys:
            for key in keys:
                lines += _verdict(by_key[key])
        else:
            lines += [f"## {stage(r.name).title}", ""]
        lines += _stage_body(r)

    lines += ["## Config of every run", "",
              "Each engine batch also keeps its own `config.json` beside its `metrics.csv` and checkpoint "
              "(for example `ungrokking/wd_1/config.json`).", ""]
    for r in results:
        if r.config is not None:
            lines += [f"<details><summary>{r.name}</summary>", "", "```json",
                      json.dumps(r.config, indent=1, default=str), "```", "", "</details>", ""]
    return "\n".join(lines) + "\n"
