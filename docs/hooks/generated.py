"""Generated parts of the documentation, filled in at build time.

A page asks for generated content with a marker on a line of its own::

    <!-- circeff:claims -->                   every claim of the registry, one table
    <!-- circeff:claim D4.case2 -->           one claim: hypotheses, routes, check output,
                                              and what the checker printed for each
                                              variant that drops a hypothesis
    <!-- circeff:cli -->                      the CLI reference, walked from circeff.cli.main.app
    <!-- circeff:verdict P1 -->               a verdict from the reproduce summary.json
    <!-- circeff:figure reproduce/efficiency.png Caption text -->
                                              a figure under docs/figures/, or an admonition
                                              saying how to produce it when it is missing
    <!-- circeff:figures reproduce/*ungrok*.png Caption -->
                                              every figure matching a glob, or the admonition
    <!-- circeff:stage-figures efficiency -->         the figures a reproduce stage lists in summary.json
    <!-- circeff:verdict-summary -->          one line per verdict of summary.json
    <!-- circeff:stage-tables semigrokking Runs by|The threshold -->
                                              a stage's tables from summary.json (by title start)
    <!-- circeff:controls P1 -->              false accept / false reject of a verdict measured on
                                              the run's own design (no argument: every verdict)
    <!-- circeff:settings efficiency -->              P, widths, lr, steps, seeds of a reproduce stage
                                              (no argument: every stage)
    <!-- circeff:reproduce-run -->            command, scale, machine and timings of that run
    <!-- circeff:toy fig2 -->                 the numbers behind a toy figure
    <!-- circeff:benchmarks -->               docs/data/benchmarks.json as tables
    <!-- circeff:csv data/semigrokking_pilot.csv -->
                                              a CSV written by a recorded command, as a table
    <!-- circeff:tests-by-id -->              which tests carry which claim/prediction id

The reproduce markers (verdict, verdict-summary, controls, settings, stage-figures, stage-notes,
reproduce-run) read the quick run's ``summary.json``; with ``@full`` as the first word of the
argument (``<!-- circeff:controls @full P1 -->``) they read the full run's
``summary_full.json`` and its figures under ``docs/figures/reproduce-full/`` instead, and with
``@converged`` those of the full-scale ungrokking run at a converged decay budget
(``summary_converged.json``, ``docs/figures/reproduce-converged/``).

The sources: the claims registry (``circeff.theory.claims.CLAIMS``), the CLI itself, and the
data files that ``docs/scripts/build_figures.py`` and ``docs/scripts/record_benchmark.py``
write into ``docs/data/`` (never edited by hand). An unknown marker, or a claim id that the
registry does not know, stops the build. So does a public module without an API section
(see :func:`check_api_coverage`): ``mkdocs build --strict`` fails on a missing API page.
"""

from __future__ import annotations

import html
import importlib.util
import json
import posixpath
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.exceptions import PluginError

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
DATA = DOCS / "data"
FIGURES = DOCS / "figures"
# The recorded runs the reproduce markers can show, with their data file and figure folder under
# docs/: the mapping of docs/scripts/build_figures.py, which writes them (one definition).
_spec = importlib.util.spec_from_file_location("circeff_docs_build_figures", DOCS / "scripts" / "build_figures.py")
_build_figures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build_figures)
RUNS: dict[str, tuple[str, str]] = _build_figures.RUNS
THEORY_CHECK = DATA / "theory_check.json"
TOY_SUMMARY = DATA / "toy_summary.json"
BENCHMARKS = DATA / "benchmarks.json"

MARKER = re.compile(r"^<!--\s*circeff:(?P<kind>[\w-]+)(?:\s+(?P<arg>.*?))?\s*-->\s*$", re.M)
REPRODUCE_HINT = ("circeff reproduce --quick --out results/quick\n"
                  "python docs/scripts/build_figures.py results/quick")


def _run_of(arg: str) -> tuple[str, str]:
    """(run, rest of the argument): ``"@full P1"`` -> ``("full", "P1")``; no ``@``: the quick run."""
    first, _, rest = arg.partition(" ")
    if not first.startswith("@"):
        return "quick", arg
    if first[1:] not in RUNS:
        raise PluginError(f"unknown run {first!r} (known: {', '.join('@' + r for r in RUNS)})")
    return first[1:], rest.strip()


def _summary(run: str = "quick") -> Any | None:
    return _load_json(DATA / RUNS[run][0])


# ---------------------------------------------------------------- small helpers

def _load_json(path: Path) -> Any | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    s = html.escape(str(text), quote=False).replace("|", "&#124;").replace("\n", " ")
    return s.replace("*", r"\*").replace("_", r"\_")


def _code(text: Any) -> str:
    s = str(text).replace("|", "&#124;")
    return f"`{s}`" if "`" not in s else f"<code>{html.escape(s)}</code>"


def _rounded(value: Any) -> Any:
    """Floats to 6 significant digits, for display only."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) > 8:
            return "[" + ", ".join(_fmt(v) for v in value[:8]) + f", … ({len(value)} values)]"
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        if {"value", "lo", "hi"} <= value.keys():  # an interval record of circeff.analysis.stats
            level = value.get("level")
            extra = ", ".join(x for x in (f"{level:.0%}" if isinstance(level, float) else "",
                                          str(value.get("method") or "")) if x)
            return (f"{_fmt(value['value'])} [{_fmt(value['lo'])}, {_fmt(value['hi'])}]"
                    + (f" ({extra})" if extra else ""))
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return "—" if value is None else str(value)


def _missing(what: str, how: str) -> str:
    how = "\n".join("    " + line for line in how.splitlines())
    return (f'!!! warning "Not yet reproduced"\n    {what} is not in this build of the docs. '
            f"Run\n\n    ```bash\n{how}\n    ```\n\n    and rebuild the site.\n")


def _claims():
    from circeff.theory.claims import CLAIMS

    return CLAIMS


def _check_results() -> dict[str, dict]:
    data = _load_json(THEORY_CHECK)
    return {} if data is None else {c["claim"]: c for c in data["claims"]}


def _route_function(route):
    """The module-level function a registry route runs (routes are often small lambdas)."""
    if getattr(route, "__name__", "") != "<lambda>":
        return route
    for cell in route.__closure__ or ():  # _fixed(fn) wraps fn
        if callable(cell.cell_contents):
            return _route_function(cell.cell_contents)
    names, glob = route.__code__.co_names, route.__globals__
    for alias, attr in zip(names, names[1:]):  # e.g. A.numeric_D4_case2(seed, case=...)
        fn = getattr(glob.get(alias), attr, None)
        if isinstance(glob.get(alias), ModuleType) and callable(fn):
            return fn
    return route


def _route_name(route) -> str:
    """A cross-reference to the route's function in the API pages (autorefs checks it)."""
    fn = _route_function(route)
    ident = f"{fn.__module__}.{fn.__qualname__}"
    if "<lambda>" in ident:
        return f"`{ident}`"
    note = " (through a lambda in the registry that sets its arguments)" if fn is not route and route.__closure__ is None else ""
    return f"[`{ident}`][{ident}]{note}"


# ---------------------------------------------------------------- theory

def _anchor(claim_id: str) -> str:
    return "claim-" + re.sub(r"[^A-Za-z0-9]+", "-", claim_id)


def _claim_link(claim) -> str:
    """Link from the overview (theory/index.md) to the claim's section on its own page."""
    base = claim.falsifies or claim.id
    page = {"D1": "d1.md", "D2": "d2.md", "D3": "d3.md", "D4": "d4.md"}[base.split(".")[0]]
    return f"[{_code(claim.id)}]({page}#{_anchor(base)})"


def render_claims_table() -> str:
    claims, results = _claims(), _check_results()
    rows = ["| id | statement | hypotheses | expected | checked outcome |",
            "| --- | --- | --- | --- | --- |"]
    for c in claims.values():
        got = results.get(c.id)
        outcome = "—" if got is None else (got["outcome"] + (" ✓" if got["ok"] else " ✗ UNEXPECTED"))
        hyp = "; ".join(c.hypotheses)
        if c.is_falsification:
            hyp = f"drops: {c.dropped}"
        rows.append(f"| {_claim_link(c)} | {_cell(c.statement)} | {_cell(hyp)} | {c.expected} "
                    f"| {_cell(outcome)} |")
    note = ""
    if THEORY_CHECK.is_file():
        data = _load_json(THEORY_CHECK)
        note = (f"\nOutcomes from `circeff theory check --falsify --seed {data['seed']}` "
                f"({len(data['claims'])} claims, {data['seconds']:.1f} s; all as expected: "
                f"{'yes' if data['ok'] else 'NO: ' + ', '.join(data['failures'])}), recorded by "
                "`docs/scripts/build_figures.py`.\n")
    else:
        note = "\n" + _missing("The checker output", "python docs/scripts/build_figures.py --no-toy")
    return "\n".join(rows) + "\n" + note


def _routes_table(result: dict) -> str:
    rows = ["| route | status | what the checker printed |", "| --- | --- | --- |"]
    for r in result["routes"]:
        rows.append(f"| {r['route']} | **{r['status']}** | {_cell(r['detail'])} |")
    return "\n".join(rows)


def render_claim(claim_id: str) -> str:
    claims, results = _claims(), _check_results()
    if claim_id not in claims:
        raise PluginError(f"generated: unknown claim id {claim_id!r} (known: {', '.join(claims)})")
    c = claims[claim_id]
    out = [f"### Claim `{c.id}` {{ #{_anchor(c.id)} }}", "",
           f"**Registry statement** (expected: *{c.expected}*): {_cell(c.statement)}", "",
           "Hypotheses:", ""]
    out += [f"- {_cell(h)}" for h in c.hypotheses]
    out += ["", "Routes (run by `circeff theory check --claims " + c.id + "`):", ""]
    out += [f"- {_route_name(r)}" for r in c.routes]
    out.append("")
    got = results.get(c.id)
    if got is None:
        out.append(_missing(f"The checker output for {c.id}",
                            "python docs/scripts/build_figures.py --no-toy"))
    else:
        out += [f"Outcome: **{got['outcome']}** "
                f"({'as expected' if got['ok'] else 'NOT as expected'}).", "", _routes_table(got), ""]
    variants = [v for v in claims.values() if v.falsifies == c.id]
    for v in variants:
        out += [f'???+ failure "Drop a hypothesis: `{v.id}` ({_cell(v.dropped)})"',
                f"    `circeff theory check --claims {c.id} --falsify` also runs `{v.id}`: "
                f"{_cell(v.statement)}. Route: " + ", ".join(_route_name(r) for r in v.routes)
                + ". The checker must find a counterexample; it printed:", ""]
        vres = results.get(v.id)
        if vres is None:
            out.append("    (no recorded output)")
        else:
            for r in vres["routes"]:
                out.append(f"    - {r['route']}, **{r['status']}**: {_cell(r['detail'])}")
            if vres.get("counterexample"):
                out += ["", "    Counterexample (from the JSON output):", "", "    ```text"]
                for key, val in vres["counterexample"].items():
                    text = json.dumps(_rounded(val))
                    out.append(f"    {key}: {text if len(text) <= 110 else text[:110] + ' …'}")
                out.append("    ```")
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- CLI reference

def _click_types():
    try:  # typer >= 0.22 vendors click under typer._click
        from typer import _click as click
    except ImportError:  # pragma: no cover - older typer
        import click
    return click


def _is_group(cmd) -> bool:
    # typer 0.29's vendored click has no Group class; a group is what lists sub-commands
    return callable(getattr(cmd, "list_commands", None))


def _walk(cmd, ctx, click):
    yield cmd, ctx
    if _is_group(cmd):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            yield from _walk(sub, click.Context(sub, info_name=name, parent=ctx), click)


def _default(param) -> str:
    d = param.default
    if d is None or callable(d) or type(d).__name__.endswith("Sentinel") or repr(d).startswith("<"):
        return ""
    if getattr(param, "is_flag", False) and getattr(param, "secondary_opts", None):
        return ("--" if d else "--no-") + param.name.replace("_", "-")
    if isinstance(d, (list, tuple)):
        return ", ".join(map(str, d)) if d else ""
    return str(d)


def _type_name(param) -> str:
    if getattr(param, "type", None) is not None:  # click proper
        return param.type.name
    ann = getattr(getattr(param, "type_descriptor", None), "annotation", None)  # typer 0.29
    if ann is None:
        return ""
    text = getattr(ann, "__name__", None) or str(ann)
    text = text.replace("typing.", "").replace("pathlib.", "")
    m = re.fullmatch(r"Optional\[(.*)\]", text) or re.fullmatch(r"(.*) \| None", text)
    return (m.group(1) if m else text).lower()


def render_cli() -> str:
    import typer

    from circeff.cli.main import app

    click = _click_types()
    root = typer.main.get_command(app)
    ctx = click.Context(root, info_name="circeff")
    out = []
    for cmd, c in _walk(root, ctx, click):
        path = c.command_path
        depth = path.count(" ")
        heading = "#" * min(2 + depth, 4)
        out += [f"{heading} `{path}`", ""]
        text = (cmd.help or "").strip()
        if text:
            out += [html.escape(p.strip(), quote=False) for p in text.split("\n\n")]
            out.append("")
        out += ["```text", cmd.get_usage(c).strip(), "```", ""]
        if _is_group(cmd):
            subs = [(n, cmd.get_command(c, n)) for n in cmd.list_commands(c)]
            rows = ["| command | summary |", "| --- | --- |"]
            rows += [f"| `{path} {n}` | {_cell(s.get_short_help_str(limit=120))} |"
                     for n, s in subs if s is not None and not s.hidden]
            out += rows + [""]
            continue
        params = [p for p in cmd.params if not getattr(p, "hidden", False)]
        if params:
            rows = ["| option | type | default | required | help |", "| --- | --- | --- | --- | --- |"]
            for p in params:
                names = " / ".join(list(p.opts) + list(getattr(p, "secondary_opts", [])))
                kind = "flag" if getattr(p, "is_flag", False) else _type_name(p)
                rows.append(f"| {_code(names)} | {_cell(kind)} | {_code(_default(p)) if _default(p) else ''} "
                            f"| {'yes' if p.required else ''} | {_cell(getattr(p, 'help', '') or '')} |")
            out += rows + [""]
    return "\n".join(out)


# ---------------------------------------------------------------- predictions

def render_verdict(arg: str) -> str:
    run, key = _run_of(arg)
    summary = _summary(run)
    if summary is None:
        return _missing(f"The verdict `{key}`", REPRODUCE_HINT)
    verdicts = summary.get("verdicts", {})
    if key not in verdicts:
        return _missing(f"The verdict `{key}` (absent from summary.json)", REPRODUCE_HINT)
    v = verdicts[key]
    word = _outcome(v)
    kind = {"holds": "success", "does not hold": "failure"}.get(word, "warning")
    source = summary.get("_source", "circeff reproduce")
    out = [f'!!! {kind} "Verdict {key}: {word}, {_robust(v)}"']
    if v.get("reason"):
        out.append(f"    {_cell(v['reason'])}")
        out.append("")
    out += [f"    From `{source}` (copied by `docs/scripts/build_figures.py`).", ""]
    rows = ["| quantity | value |", "| --- | --- |"]
    record_tables = []
    for k, val in v.items():
        if k in ("holds", "reason", "outcome", "robustness", "criteria"):
            continue
        if _is_records(val):  # e.g. the allocation's per-D rows: a table of their own
            record_tables.append(f"**{_cell(k)}**\n\n" + _records_table(val))
            continue
        rows.append(f"| {_cell(k)} | {_cell(_fmt(val))} |")
    table = "\n".join(rows) + "\n" if len(rows) > 2 else ""
    checks = ((v.get("robustness") or {}).get("checks") or {})
    if checks:
        record_tables.insert(0, "**robust or fragile: the checks**\n\n" + _table(
            ["check", "passed", "detail"],
            [[k, {True: "yes", False: "no", None: "not run"}[c.get("passed")], c.get("detail", "")]
             for k, c in checks.items()]))
    if v.get("criteria"):
        record_tables.insert(0, "**deciding statistics**\n\n" + _table(
            ["statistic", "value", "threshold", "standard error", "margin (SE, + passes)"],
            [[c["name"], c["value"], c["threshold"], c.get("se"), c.get("margin_se")] for c in v["criteria"]]))
    return "\n".join(out) + "\n" + table + "".join("\n" + t for t in record_tables)


def _outcome(v: dict) -> str:
    """holds, does not hold or undecided (a summary written before the three outcomes: from holds)."""
    return v.get("outcome") or ("holds" if v.get("holds") else "does not hold")


def _robust(v: dict) -> str:
    from circeff.report import robust_text

    return robust_text(v["robustness"]) if v.get("robustness") else "robustness not checked in this run"


def _is_records(value: Any) -> bool:
    """A non-empty list of dicts that all have the same keys."""
    return (isinstance(value, list) and bool(value) and all(isinstance(r, dict) for r in value)
            and all(r.keys() == value[0].keys() for r in value))


def _table(header: list[Any], rows: list[list[Any]]) -> str:
    """A Markdown table: header cells escaped, row cells formatted (:func:`_fmt`) and escaped."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(_fmt(c)) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _records_table(records: list[dict]) -> str:
    keys = list(records[0])
    return _table(keys, [[r[k] for k in keys] for r in records])


PAGES = {"P1": "p1.md", "P2": "p2.md", "P3": "p3.md", "P4": "p4.md", "fig10a": "fig10.md",
         "allocation": "allocation.md"}


def _verdict_row(label: str, v: dict) -> str:
    outcome = _outcome(v)
    css = {"holds": "verdict-holds", "does not hold": "verdict-fails"}.get(outcome, "verdict-undecided")
    return f'| {label} | <span class="{css}">{outcome}</span> | {_cell(_robust(v))} | {_cell(v.get("reason", ""))} |'


def render_verdict_summary(arg: str = "") -> str:
    """One line per verdict of summary.json: holds or not, and the reason the data gave; then a
    stage's own verdicts (``stage_verdicts``: Figure 8's P2 and P3 per task)."""
    run, _ = _run_of(arg)
    summary = _summary(run)
    if summary is None:
        return _missing("The verdicts", REPRODUCE_HINT)
    rows = ["| key | outcome | robust or fragile | why (computed from the data) |", "| --- | --- | --- | --- |"]
    for key, v in summary.get("verdicts", {}).items():
        rows.append(_verdict_row(f"[{_code(key)}]({PAGES[key]})" if key in PAGES and run == "quick" else _code(key), v))
    rows += [_verdict_row(_code(key), v) for key, v in (summary.get("stage_verdicts") or {}).items()]
    return "\n".join(rows) + "\n"


def _report():
    """circeff.report's table helpers (the same rendering as report.md)."""
    from circeff import report
    return report


def _summary_section(section: str, arg: str) -> tuple[dict | None, dict]:
    """summary.json (None when there is none) and the entries of one of its sections, all of
    them or only the key the argument names."""
    run, key = _run_of(arg)
    summary = _summary(run)
    entries = (summary or {}).get(section) or {}
    return summary, {k: v for k, v in entries.items() if not key or k == key}


def render_controls(key: str) -> str:
    """The measured false-accept and false-reject rates of one verdict (or all), from the
    ``controls`` of summary.json (each drawn with the run's own design and noise)."""
    summary, chosen = _summary_section("controls", key)
    if not chosen:
        return _missing(f"The controls of `{key or 'every verdict'}`"
                        + (" (absent from summary.json)" if summary else ""), REPRODUCE_HINT)
    rep = _report()
    table = _table(rep.CONTROLS_HEADER, rep.controls_rows(chosen))
    n = summary.get("controls_n", "n")
    return (f"Measured on {n} synthetic tables per truth, drawn with this run's own design (grid, seeds) "
            "and noise (from its residuals); targets: false accept at most 5%, false reject at most 20%.\n\n"
            + table)


def render_settings(stage: str) -> str:
    """P, model widths, lr, steps and seeds of one reproduce stage (or all) of summary.json."""
    summary, chosen = _summary_section("settings", stage)
    if not chosen:
        return _missing(f"The settings of stage `{stage or 'every stage'}`"
                        + (" (absent from summary.json)" if summary else ""), REPRODUCE_HINT)
    rep = _report()
    return _table(rep.SETTINGS_HEADER, rep.settings_rows(chosen))


def render_figure(arg: str, page) -> str:
    rel, _, caption = arg.partition(" ")
    if (FIGURES / rel).is_file():
        src = posixpath.relpath(f"figures/{rel}", posixpath.dirname(page.file.src_uri) or ".")
        return (f"<figure markdown>\n![{caption}]({src})\n"
                f"<figcaption>{html.escape(caption)}</figcaption>\n</figure>\n")
    how = (REPRODUCE_HINT if rel.startswith("reproduce/")
           else "python docs/scripts/build_figures.py")
    return _missing(f"The figure `{rel}`", how)


def render_figures(arg: str, page) -> str:
    """Every figure matching a glob (``reproduce/*ungrok*.png``), in name order."""
    pattern, _, caption = arg.partition(" ")
    found = sorted(FIGURES.glob(pattern))
    if not found:
        how = REPRODUCE_HINT if pattern.startswith("reproduce/") else "python docs/scripts/build_figures.py"
        return _missing(f"A figure matching `{pattern}`", how)
    return "\n".join(render_figure(f"{p.relative_to(FIGURES).as_posix()} {caption} ({p.name})", page)
                     for p in found)


def render_stage_figures(arg: str, page) -> str:
    """The figures one ``circeff reproduce`` stage lists in summary.json, with its captions."""
    run, stage = _run_of(arg)
    summary = _summary(run)
    if summary is None:
        return _missing(f"The figures of the reproduce stage `{stage}`", REPRODUCE_HINT)
    info = summary.get("stages", {}).get(stage)
    if info is None:
        raise PluginError(f"{page.file.src_path}: summary.json has no stage {stage!r}")
    out = []
    if info.get("status") == "failed":
        out.append(f'!!! failure "Stage {stage} failed"\n    {_cell(info.get("error"))}\n')
    for caption, rel in (info.get("figures") or {}).items():
        out.append(render_figure(f"{RUNS[run][1]}/{rel} {caption}", page))
    return "\n".join(out) or _missing(f"A figure of stage `{stage}`", REPRODUCE_HINT)


def _minutes(t: dict) -> str:
    this_call = f"this call {t.get('total_s', float('nan')) / 60:.1f} min"
    if "stages_s" not in t:
        return this_call
    return f"all stages {t['stages_s'] / 60:.1f} min ({this_call}; skipped stages were done earlier)"


def render_reproduce_run(arg: str = "") -> str:
    """Which run the prediction pages show: command, scale, machine, time per stage."""
    s = _summary(_run_of(arg)[0])
    if s is None:
        return _missing("The reproduce run", REPRODUCE_HINT)
    env = s.get("environment", {})
    t = s.get("timings", {})
    from circeff.report import stage_status
    from circeff.reproduce.config import preset_name

    out = [f"`{s.get('command') or 'circeff reproduce'}`: preset `{preset_name(s.get('preset'), s.get('scale'))}`, finished {env.get('finished', '?')} on {env.get('platform', '?')} "
           f"(Python {env.get('python', '?')}); {_minutes(t)}.", "",
           "| stage | status | seconds |", "| --- | --- | --- |"]
    for name, st in t.get("stages", {}).items():
        status = stage_status(st.get("status", ""), bool(st.get("skipped")), float(st.get("earlier_s") or 0.0))
        out.append(f"| {_code(name)} | {_cell(status)} | {_fmt(st.get('seconds'))} |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- toy numbers

def render_toy(key: str) -> str:
    data = _load_json(TOY_SUMMARY)
    if data is None or key not in data:
        return _missing(f"The toy numbers `{key}`", "python docs/scripts/build_figures.py")
    block = data[key]
    rows = [block["columns"]]
    out = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
    for r in block["rows"]:
        out.append("| " + " | ".join(_cell(_fmt(x)) for x in r) + " |")
    return f"{block.get('caption', '')}\n\n" + "\n".join(out) + "\n"


# ---------------------------------------------------------------- benchmarks

def render_benchmarks() -> str:
    data = _load_json(BENCHMARKS)
    if not data:
        return _missing("Benchmark numbers", "python docs/scripts/record_benchmark.py toy")
    out = []
    for name, b in data.items():
        out += [f"### {name}", "", f"`{b['command']}`", ""]
        m = b.get("machine", {})
        rows = ["| | |", "| --- | --- |"]
        for k in ("measured_by", "date", "cpu", "cores", "load_before", "python", "numpy", "torch", "note"):
            if k in b or k in m:
                rows.append(f"| {k.replace('_', ' ')} | {_cell(_fmt(b.get(k, m.get(k))))} |")
        for k, v in b.get("headline", {}).items():
            rows.append(f"| **{_cell(k)}** | **{_cell(_fmt(v))}** |")
        out += rows + ["", "```text", *b.get("output", []), "```", ""]
    for kind in ("toy", "engine"):
        if not any(name == kind or name.startswith(kind + " ") for name in data):
            out.append(_missing(f"The {kind} benchmark", f"python docs/scripts/record_benchmark.py {kind}")
                       .replace("Not yet reproduced", "Not yet recorded"))
    return "\n".join(out)


def render_csv(arg: str) -> str:
    """A CSV under docs/ (written by a recorded command, never by hand) as a markdown table."""
    import csv

    path = DOCS / arg
    if not path.is_file():
        return _missing(f"The table `{arg}`", "the command named beside it on this page")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))

    def value(text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text

    return _table(rows[0], [[value(c) for c in r] for r in rows[1:]])


# ---------------------------------------------------------------- tests by claim id

def render_tests_by_id() -> str:
    claims = _claims()
    ids = [c.id for c in claims.values() if not c.is_falsification]
    ids += ["D4", "P1", "P2", "P3", "P4", "Dcrit", "fig10"]
    prefixes = sorted({i.replace(".", "_"): i for i in ids}.items(), key=lambda kv: -len(kv[0]))
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for name in re.findall(r"^\s*def (test_\w+)", path.read_text(), re.M):
            for prefix, cid in prefixes:
                if name.startswith(f"test_{prefix}_") or name == f"test_{prefix}":
                    found.setdefault(cid, []).append(f"{path.relative_to(ROOT)}::{name}")
                    break
    rows = ["| id | tests (file::function) |", "| --- | --- |"]
    for cid in ids:
        tests = found.get(cid, [])
        rows.append(f"| {_code(cid)} | " + ("<br>".join(_code(t) for t in tests) or "—") + " |")
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------- API coverage

def _api_pages(config) -> str:
    return "\n".join(p.read_text() for p in (Path(config["docs_dir"]) / "api").glob("*.md"))


def check_api_coverage(config) -> None:
    """Every public module of every package in pyproject.toml has a ``::: id`` section.

    The command line (``circeff.cli``) is documented by the generated CLI reference, so it
    is exempt. A package rendered with ``show_submodules: true`` covers its submodules.
    """
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from api_sources import package_dirs
    finally:
        sys.path.pop(0)
    text = _api_pages(config)
    documented = set(re.findall(r"^:::\s*([\w.]+)", text, re.M))
    recursive = set(re.findall(r"^:::\s*([\w.]+)\n\s+options:\n(?:\s+\w+:.*\n)*?\s+show_submodules:\s*true",
                               text, re.M))
    missing = []
    for package, folder in package_dirs().items():
        if package == "circeff.cli" or package.startswith("circeff.cli."):
            continue
        modules = [package] + [f"{package}.{p.stem}" for p in folder.glob("*.py")
                               if not p.stem.startswith("_")]
        for m in modules:
            if m in documented or any(m == r or m.startswith(r + ".") for r in recursive):
                continue
            missing.append(m)
    if missing:
        raise PluginError("API reference: no '::: <module>' section in docs/api/*.md for "
                          + ", ".join(sorted(missing)))


# ---------------------------------------------------------------- mkdocs events

def render_stage_notes(arg: str) -> str:
    """The notes one ``circeff reproduce`` stage lists in summary.json (e.g. the allocation's
    kappa_eff, the circuits' D ranges and the D_crit goal), as a list."""
    run, stage = _run_of(arg)
    summary = _summary(run)
    if summary is None:
        return _missing(f"The notes of the reproduce stage `{stage}`", REPRODUCE_HINT)
    notes = (summary.get("stages", {}).get(stage) or {}).get("notes") or []
    if not notes:
        return _missing(f"Notes of the reproduce stage `{stage}` (absent from summary.json)", REPRODUCE_HINT)
    return "\n".join(n if n.startswith(("- ", "```")) else f"- {n}" for n in notes) + "\n"


def render_stage_tables(arg: str) -> str:
    """The tables one ``circeff reproduce`` stage lists in summary.json whose titles start with one
    of the given words (``@full semigrokking Runs by|The threshold``: after the stage name, a
    ``|``-separated list of title beginnings; none: every table)."""
    run, rest = _run_of(arg)
    stage, _, starts = rest.partition(" ")
    summary = _summary(run)
    if summary is None:
        return _missing(f"The tables of the reproduce stage `{stage}`", REPRODUCE_HINT)
    wanted = tuple(w.strip() for w in starts.split("|") if w.strip())
    tables = [t for t in (summary.get("stages", {}).get(stage) or {}).get("tables") or []
              if not wanted or t["title"].startswith(wanted)]
    if not tables:
        return _missing(f"Tables of the reproduce stage `{stage}` (absent from summary.json)", REPRODUCE_HINT)
    return "\n".join(f"*{_cell(t['title'])}*\n\n{_table(t['header'], t['rows'])}" for t in tables)


RENDERERS = {
    "claims": lambda arg, page: render_claims_table(),
    "claim": lambda arg, page: render_claim(arg),
    "cli": lambda arg, page: render_cli(),
    "verdict": lambda arg, page: render_verdict(arg),
    "figure": render_figure,
    "figures": render_figures,
    "stage-figures": render_stage_figures,
    "stage-notes": lambda arg, page: render_stage_notes(arg),
    "stage-tables": lambda arg, page: render_stage_tables(arg),
    "reproduce-run": lambda arg, page: render_reproduce_run(arg),
    "verdict-summary": lambda arg, page: render_verdict_summary(arg),
    "controls": lambda arg, page: render_controls(arg),
    "settings": lambda arg, page: render_settings(arg),
    "toy": lambda arg, page: render_toy(arg),
    "benchmarks": lambda arg, page: render_benchmarks(),
    "csv": lambda arg, page: render_csv(arg),
    "tests-by-id": lambda arg, page: render_tests_by_id(),
}


def on_config(config):
    check_api_coverage(config)
    return config


def on_page_markdown(markdown, page, config, files):
    def replace(match: re.Match) -> str:
        kind, arg = match["kind"], (match["arg"] or "").strip()
        if kind not in RENDERERS:
            raise PluginError(f"{page.file.src_path}: unknown marker circeff:{kind}")
        return RENDERERS[kind](arg, page)

    return MARKER.sub(replace, markdown)


_ROLE = re.compile(r":(?:func|class|meth|attr|data|mod|obj|exc|const):(<code>)")


def on_page_content(html_text, page, config, files):
    """Docstrings use Sphinx roles (``:func:`name```); show them as plain code."""
    return _ROLE.sub(r"\1", html_text)
