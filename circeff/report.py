"""``report.md`` of ``circeff reproduce``: markdown built from the summary; computes nothing.

Every number in the report comes from ``summary.json`` (the same run); figures are linked by
paths relative to the out folder, so the folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["write_report"]

_TITLES = {
    "P1": "P1 efficiency: M needs more norm as D grows, G does not",
    "P2": "P2 ungrokking: a phase transition in final test accuracy at D_crit",
    "P3": "P3: the transition does not depend on weight decay",
    "P4": "P4 semi-grokking: some runs settle at middling test accuracy after a delay",
    "fig10a": "Figure 10a: the G:M ratio rises monotonically with D",
    "allocation": "Theorem D.4 allocation from the P1 fits against the measured G:M ratio",
}


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        if isinstance(x, float) and not math.isfinite(x):
            return "inf" if x > 0 else "-inf" if x < 0 else "nan"
        return f"{x:.{digits}g}"
    return str(x)


def _iv(d: Mapping[str, Any] | None, digits: int = 3) -> str:
    """``value [lo, hi]`` of an Interval dict (None ends: unbounded)."""
    if not d:
        return "n/a"
    lo = "-inf" if d.get("lo") is None else _num(d["lo"], digits)
    hi = "inf" if d.get("hi") is None else _num(d["hi"], digits)
    return f"{_num(d.get('value'), digits)} [{lo}, {hi}]"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_num(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows]
    return out + [""]


def _figures(outcome: Any) -> list[str]:
    return [f"![{caption}]({path})\n\n*{caption}*\n" for caption, path in outcome.figures.items()]


def _verdict_table(key: str, v: Mapping[str, Any]) -> list[str]:
    rows: list[list[Any]] = [["holds", "**yes**" if v.get("holds") else "**NO**"]]
    if key == "P1":
        rows += [["M: slope of log P_M vs log D", _iv(v.get("m_slope"))],
                 ["G: slope of log P_G vs log D", _iv(v.get("g_slope"))],
                 ["kappa G", _iv(v.get("kappa_G"))], ["kappa M", _iv(v.get("kappa_M"))],
                 ["crossover D_crit", _iv(v.get("crossover_D_crit"), 4)]]
    elif key == "P2":
        rows += [["jump of the fitted transition", _num(v.get("jump"))], ["needs at least", _num(v.get("min_jump"))],
                 ["D_crit (midpoint, bootstrap over seeds)", _iv(v.get("D_crit"), 4)],
                 ["chance accuracy", _num(v.get("chance"))],
                 ["networks converged", f"{v.get('converged')} of {v.get('n_networks')}"]]
    elif key == "P3":
        rows += [["slope of log D_crit vs log wd", _iv(v.get("slope"))], ["tolerance", _num(v.get("tolerance"))],
                 ["D_crit max/min over wd", _num(v.get("spread_ratio"))],
                 ["decay budget wd x steps", _num(v.get("decay_budget"))]]
        for wd, iv in (v.get("D_crit_by_weight_decay") or {}).items():
            steps = (v.get("steps_per_weight_decay") or {}).get(wd)
            rows.append([f"D_crit at wd {wd} ({steps} steps)", _iv(iv, 4)])
    elif key == "P4":
        counts = v.get("counts") or {}
        rows += [["runs", _num(v.get("n_runs"))]] + [[f"  {k}", _num(n)] for k, n in counts.items()]
        rows += [["transient plateaus", _num(v.get("n_transient"))], ["needs semi >=", _num(v.get("min_semi"))],
                 ["middling band", _num(v.get("band"))], ["sizes", _num(v.get("sizes"))],
                 ["D_crit used", f"{_num(v.get('D_crit_used'), 4)} ({v.get('D_crit_source')})"]]
    elif key == "fig10a":
        rows += [["Spearman(D, ratio)", _iv(v.get("rho"))], ["networks", _num(v.get("n"))],
                 ["D values", _num(v.get("n_D"))],
                 ["networks converged", f"{v.get('converged')} of {v.get('n_networks')}"]]
    elif key == "allocation":
        rows += [["D.4 case", f"{v.get('case')} ({v.get('theory_case')})"], ["q", _num(v.get("q"))],
                 ["kappa (pooled; G, M)", f"{_num(v.get('kappa'))} ({_num(v.get('kappa_G'))}, {_num(v.get('kappa_M'))})"],
                 ["predicted exponent of P_M/P_G", _num(v.get("exponent"))],
                 ["measured exponent", _iv(v.get("measured_exponent"))],
                 ["magnitude holds", _num(v.get("magnitude_holds"))],
                 ["Spearman(predicted, measured)", _iv(v.get("spearman"))],
                 ["median abs log error", _num(v.get("median_abs_log_error"))],
                 ["winner agreement", _num(v.get("winner_agreement"))]]
    if v.get("reason"):
        rows.append(["reason", str(v["reason"]).replace("|", "/")])
    return _table(["quantity", "value"], rows)


def write_report(summary: Mapping[str, Any], outcomes: Mapping[str, Any]) -> str:
    """The markdown report of one reproduce run."""
    v = summary["verdicts"]
    t = summary["timings"]
    lines = [f"# Reproduction report: {summary['preset']} preset, {summary['scale']} scale", ""]
    if summary.get("command"):
        lines += [f"Command: `{summary['command']}`", ""]
    lines += [f"Finished {summary['environment']['finished']} on {summary['environment']['platform']}; "
              f"all stages {t['stages_s']:.1f} s, wall time of this call {t['total_s']:.1f} s (stages skipped "
              "because they were done earlier count 0 in the second; their original time is in the stage "
              "table).", ""]
    if summary["scale"] != "full" or summary["preset"] != "paper":
        lines += ["Scale note: this is not the paper's scale (P = 113, millions of epochs). Small P, "
                  "a narrower model and short runs show the qualitative phenomena at best; a verdict that "
                  "does not hold here is reported as not holding, with its numbers.", ""]

    lines += ["## Verdicts", ""]
    lines += _table(["prediction", "holds", "key numbers"],
                    [[k, "**yes**" if v[k]["holds"] else "**NO**", str(v[k].get("reason", "")).replace("|", "/")]
                     for k in v])
    d2 = summary.get("dcrit_two_ways") or {}
    lines += ["## D_crit two ways", ""]
    lines += _table(["estimate", "D_crit [interval]"],
                    [["efficiency crossover (P1 fits)", _iv(d2.get("crossover"), 4)],
                     ["ungrokking transition midpoint (P2)", _iv(d2.get("ungrokking"), 4)],
                     ["agree (intervals overlap)", _num(d2.get("agree"))],
                     ["informative (both intervals bounded)", _num(d2.get("informative"))]])

    lines += ["## Stages and timings", ""]
    rows = []
    for name, o in outcomes.items():
        rows.append([name, o.status + (" (skipped: done earlier)" if o.skipped else ""), f"{o.seconds:.1f}",
                     (o.error or "").replace("|", "/")])
    lines += _table(["stage", "status", "seconds", "error"], rows)

    th = outcomes.get("theory")
    if th is not None and th.data:
        lines += ["## Theory checks", "", f"All claims as expected: {_num(th.data.get('ok'))}.", ""]
        lines += _table(["claim", "expected", "outcome", "ok"],
                        [[c["claim"], str(c["expected"]), str(c["outcome"]), _num(c["ok"])]
                         for c in th.data.get("claims", [])])
    toy = outcomes.get("toy")
    if toy is not None:
        lines += ["## Toy model (Figure 2)", ""] + _figures(toy)
        for k, step in (toy.data.get("grokking_step") or {}).items():
            lines.append(f"- {toy.data['titles'].get(k, k)}: grokking step {_num(step)}")
        lines.append("")
    g = outcomes.get("grokking")
    if g is not None:
        lines += ["## Grokking run (Figure 9)", ""] + _figures(g)
        if g.data:
            lines += [f"Memorised (train acc >= 0.99) at step {_num(g.data.get('memorised_at'))}, generalised "
                      f"(test acc >= 0.95) at step {_num(g.data.get('generalised_at'))}; final train/test accuracy "
                      f"{_num(g.data.get('final_train_acc'))}/{_num(g.data.get('final_test_acc'))}.", ""]
        if g.error:
            lines += [f"Failed: {g.error}", ""]

    sections = [("p1", ["P1"]), ("p2_p3", ["P2", "P3"]), ("p4", ["P4"]), ("fig10", ["fig10a"]),
                ("allocation", ["allocation"])]
    for stage, keys in sections:
        o = outcomes.get(stage)
        for key in keys:
            lines += [f"## {key}: {_TITLES[key]}", ""] + _verdict_table(key, v[key])
        if o is None:
            continue
        lines += _figures(o)
        if stage == "p1" and o.data.get("describe"):
            lines += ["```", *o.data["describe"], "```", ""]
        if stage == "base" or stage == "p2_p3":
            base = outcomes.get("base")
            if base is not None and base.data.get("networks"):
                lines += ["Base networks (trained on the full dataset; G-only when trig share > 0.95):", ""]
                lines += _table(["seed", "train acc", "trig share", "G-only"],
                                [[r["seed"], r["train_acc"], r["trig_share"], _num(r["g_only"])]
                                 for r in base.data["networks"]])
            if o.data.get("mean_acc"):
                lines += ["Final test accuracy per (weight decay, D'): mean [min, max] over seeds:", ""]
                lines += _table(["weight decay", "D'", "mean", "min", "max"],
                                [[r["weight_decay"], r["D"], r["mean"], r["min"], r["max"]] for r in o.data["mean_acc"]])
        if stage == "p4" and o.data.get("classes"):
            lines += _table(["run", "class", "final acc", "tail spread", "onset step", "transient plateau"],
                            [[c["run"], c["label"], c["final_acc"], c["tail_spread"], c["onset_step"],
                              _num(c["transient_plateau"])] for c in o.data["classes"]])
        if stage == "fig10" and v["fig10a"].get("median_by_D"):
            lines += _table(["D", "median G:M ratio", "median g_logit", "median m_logit", "mean test acc",
                             "median trig share"],
                            [[r["D"], r["ratio"], r["g_logit"], r["m_logit"], r["test_acc"], r["trig_share"]]
                             for r in v["fig10a"]["median_by_D"]])
        if stage == "allocation" and v["allocation"].get("measured_median_by_D"):
            lines += ["Measured G:M ratio (median over seeds; no prediction):", ""]
            lines += _table(["D", "measured G:M"], [[r["D"], r["measured_median_ratio"]]
                                                    for r in v["allocation"]["measured_median_by_D"]])
        if stage == "allocation" and v["allocation"].get("rows"):
            lines += ["Table (also `allocation/allocation.csv`):", ""]
            lines += _table(["D", "P_G", "P_M", "predicted G:M", "measured G:M [interval]", "log error"],
                            [[r["D"], r["P_G"], r["P_M"], _num(r["predicted_ratio"]), _iv(r["measured"]),
                              r["log_error"]] for r in v["allocation"]["rows"]])
        if o.error:
            lines += [f"Stage failed: {o.error}", ""]

    lines += ["## Config of every run", "",
              "Each engine batch also keeps its own `config.json` beside its `metrics.csv` and checkpoint "
              "(for example `p2_p3/wd_1/config.json`).", ""]
    for name, o in outcomes.items():
        if o.config is not None:
            lines += [f"<details><summary>{name}</summary>", "", "```json",
                      json.dumps(o.config, indent=1, default=str), "```", "", "</details>", ""]
    return "\n".join(lines) + "\n"
