"""`circeff theory`: run the Appendix D claim checkers and solve Theorem D.4 instances.

- ``circeff theory check [--claims D1,D4.case2] [--json PATH] [--seed N] [--falsify]
  [--require-proof]``
- ``circeff theory optimum --p 1.0,1.5,2.0 --q 2 --kappa 1 --alpha 0.01 --n-classes 113
  [--certify]`` (``--kappa 6.0,4.4``: one kappa per circuit)
- ``circeff theory claims`` (the registry: ids, statements, hypotheses)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from circeff import validate as V
from circeff.errors import ConfigError
from circeff.io import write_json

app = typer.Typer(help="Check the paper's Appendix D theorems; solve the D.4 optimum.",
                  no_args_is_help=True)

_STYLE = {"proved": "green", "verified": "green", "refuted": "red", "undecided": "yellow",
          "failed": "bold red"}


def _console() -> Console:
    # A wide console when piped, so table rows stay readable in logs and CI output.
    return Console(width=None if sys.stdout.isatty() else 170, highlight=False)


def _as_option(exc: ConfigError) -> ConfigError:
    """Rename a dataclass field ("n_classes") to its option ("--n-classes")."""
    field = exc.field if exc.field.startswith("--") else "--" + exc.field.replace("_", "-").lower()
    return ConfigError(field, exc.allowed, exc.got)


def _writable(path: Path | None) -> Path | None:
    """Refuse an unwritable ``--json`` path before any work is done."""
    if path is None:
        return None
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK) or (
            path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError("--json", "must be a file path in an existing, writable folder",
                          str(path))
    return path


def _write(path: Path, obj: object) -> None:
    try:
        write_json(path, obj)
    except OSError as exc:
        raise ConfigError("--json", f"could not be written ({exc.strerror})", str(path)) from None


def _parse_ids(text: str | None) -> list[str] | None:
    if text is None:
        return None
    from circeff.theory.claims import CLAIMS

    ids = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in ids):
        raise ConfigError("--claims", "must be a comma-separated list of claim ids, e.g. "
                          "D1,D4.case2", text)
    for claim_id in ids:
        if claim_id not in CLAIMS:
            raise ConfigError("--claims", "each id must be one of " + ", ".join(CLAIMS),
                              claim_id)
    return ids


@app.command("check")
def check(
    claims: str | None = typer.Option(
        None, "--claims", help="Comma-separated claim ids (default: every claim, "
        "including D3.printed, which is expected to be refuted)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the results as JSON."),
    seed: int = typer.Option(0, "--seed", help="Seed of the numeric routes' sampled instances."),
    falsify: bool = typer.Option(
        False, "--falsify", help="Also rerun every symbolic route with each hypothesis "
        "negated (none may come out proved) and run each numeric falsification variant "
        "(each must be refuted with a printed counterexample)."),
    require_proof: bool = typer.Option(
        False, "--require-proof", help="Exit 3 unless every claim expected to hold is "
        "proved symbolically (verified-only claims then count as failures)."),
) -> int:
    """Run the claim checkers. Exit 0: every claim as expected; 1: some claim refuted,
    undecided or failed against its expectation, or (with --falsify) a negated run still
    proved; 3 (with --require-proof): some claim only verified numerically."""
    from circeff.theory.check import run_claims

    V.integer_at_least("--seed", seed, 0)
    ids = _parse_ids(claims)
    json_path = _writable(json_path)
    report = run_claims(ids, seed=seed, falsify=falsify)
    console = _console()
    table = Table(title=f"Appendix D claims (seed {seed})", show_lines=False)
    for col in ("claim", "route", "status", "detail"):
        table.add_column(col, overflow="fold")
    for res in report.results:
        for k, route in enumerate(res.routes):
            status = route.status.value
            label = status
            if res.expected == "refuted" and status == "refuted":
                label, style = "refuted (expected)", "green"
            else:
                style = _STYLE[status]
            table.add_row(res.claim_id if k == 0 else "", route.route,
                          f"[{style}]{label}[/{style}]", escape(route.detail))
    console.print(table)
    outcomes = Table(title="Claim outcomes")
    for col in ("claim", "outcome", "expected", "as expected"):
        outcomes.add_column(col)
    for res in report.results:
        style = _STYLE[res.outcome.value]
        outcomes.add_row(res.claim_id, f"[{style}]{res.outcome.value}[/{style}]",
                         res.expected, "yes" if res.ok else "[bold red]NO[/bold red]")
    console.print(outcomes)
    if report.negations:
        neg = Table(title="Symbolic routes rerun with one hypothesis negated "
                    "(none may come out proved)")
        for col in ("claim", "hypothesis negated", "symbolic status", "numeric counterexample"):
            neg.add_column(col, overflow="fold")
        for row in report.negations:
            status = row["symbolic_status"]
            style = "bold red" if status == "proved" else "green"
            neg.add_row(row["claim"], escape(row["hypothesis"]), f"[{style}]{status}[/{style}]",
                        escape(row["numeric"] or "-"))
        console.print(neg)
    n = len(report.results)
    n_variants = sum(r.falsifies is not None for r in report.results)
    summary = ", ".join(f"{k} {v}" for k, v in report.counts.items() if v)
    if n_variants:
        summary += f"; {n_variants} falsification variants"
    if report.ok:
        expected_ref = [r.claim_id for r in report.results if r.expected == "refuted"]
        note = f"; refuted as expected: {', '.join(expected_ref)}" if expected_ref else ""
        console.print(f"{n} claims ({summary}), all as expected{note} "
                      f"({report.seconds:.1f} s)")
    else:
        console.print(f"[bold red]{len(report.failures)} of {n} claims not as expected: "
                      f"{', '.join(report.failures)}[/bold red] ({summary}; "
                      f"{report.seconds:.1f} s)")
    if report.proved_under_negation:
        console.print("[bold red]proved with a hypothesis negated: "
                      + ", ".join(report.proved_under_negation) + "[/bold red]")
    if json_path is not None:
        _write(json_path, report.to_dict())
        console.print(f"wrote {json_path}")
    if not report.ok or report.proved_under_negation:
        return 1
    if require_proof and report.not_proved:
        console.print("[bold red]--require-proof: not proved symbolically: "
                      + ", ".join(report.not_proved) + "[/bold red]")
        return 3
    return 0


@app.command("optimum")
def optimum(
    P: str = typer.Option(..., "--p", help="Parameter norms P_i of the circuits, e.g. "
                          "1.0,1.5,2.0 (each > 0)."),
    q: float = typer.Option(2.0, "--q", help="Weight-decay norm exponent q > 0 (2 = L2)."),
    kappa: str = typer.Option("1.0", "--kappa", help="Layers kappa > 0: w scales the "
                              "parameters by w^(1/kappa). One value, or one per circuit "
                              "(e.g. 6.0,4.4)."),
    alpha: float = typer.Option(0.01, "--alpha", help="Weight-decay strength alpha > 0."),
    n_classes: int = typer.Option(113, "--n-classes", help="Classes n >= 2 of the "
                                  "cross-entropy L_x(s) = log(1 + (n-1) e^-s)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the optimum as JSON."),
    seed: int = typer.Option(0, "--seed", help="Seed of the multi-start minimiser."),
    certify: bool = typer.Option(False, "--certify", help="Also print interval-arithmetic "
                                 "enclosures of s* and of the loss and a proof of the case "
                                 "(one kappa only)."),
) -> int:
    """Minimise the D.4 effective loss numerically and compare with the closed form."""
    from circeff.theory import optima as O

    norms = V.parse_float_list("--p", P)
    kappas = V.parse_float_list("--kappa", kappa)
    V.integer_at_least("--seed", seed, 0)
    json_path = _writable(json_path)
    try:
        problem = O.OptimumProblem(norms, q, kappas[0] if len(kappas) == 1 else kappas,
                                   alpha, n_classes)
    except ConfigError as exc:
        raise _as_option(exc) from None
    if certify and problem.per_circuit:
        raise ConfigError("--certify", "needs one kappa for every circuit", kappa)
    opt = O.minimise(problem, seed=seed)
    console = _console()
    r = problem.r
    if problem.per_circuit and not problem.uniform:
        rs = ", ".join(f"{v:.4g}" for v in problem.rs)
        explain = {O.WINNER_TAKE_ALL: "every r_i <= 1: one circuit keeps all weight, the "
                   "best single-circuit ray (it depends on s*, not on P alone)",
                   O.INTERIOR: "every r_i > 1: every circuit keeps weight, "
                   "c_i r_i w_i^(r_i-1) equal across circuits",
                   O.PARTIAL: "circuits with r_i > 1 keep weight; at most one with "
                   "r_i <= 1 does"}[opt.case]
        explain = f"q/kappa_i = ({rs}): {explain}"
    elif opt.case == O.WINNER_TAKE_ALL:
        explain = f"q/kappa = {r:.4g} < 1: winner takes all (the minimal P keeps every weight)"
    elif opt.case == O.BOUNDARY:
        explain = ("q/kappa = 1: linear cost; all weight on the minimal P, any split among "
                   "tied minima is optimal")
    else:
        explain = (f"q/kappa = {r:.4g} > 1: power law, w_i ~ P_i^(-"
                   f"{O.power_law_exponent(q, float(problem.kappas[0])):.4g})")
    console.print(f"case: {opt.case} ({explain})")
    table = Table()
    for col in ("circuit", "P_i", "numeric w_i", "closed form w_i", "share"):
        table.add_column(col, justify="right")
    for i, p_i in enumerate(problem.P):
        cf = "-" if opt.closed_form is None else f"{opt.closed_form[i]:.10g}"
        table.add_row(str(i), f"{p_i:g}", f"{opt.weights[i]:.10g}", cf,
                      f"{opt.shares[i]:.6g}")
    console.print(table)
    cf_loss = "-" if opt.closed_form_loss is None else f"{opt.closed_form_loss:.12g}"
    console.print(f"loss at optimum: {opt.loss:.12g} (closed form: {cf_loss}); "
                  f"total weight s* = {opt.total:.10g}; KKT residual {opt.kkt_residual:.2g}")
    record = {**opt.to_dict(), "seed": seed}
    if certify:
        from circeff.theory.certify import certify as run_certify

        cert = run_certify(problem)
        console.print(f"certified (interval arithmetic, mpmath.iv at {30} digits):")
        console.print(f"  case {cert.case}: {cert.case_proof}")
        console.print(f"  s* in [{cert.s_star[0]!r}, {cert.s_star[1]!r}]")
        console.print(f"  loss in [{cert.loss[0]!r}, {cert.loss[1]!r}]")
        for note in cert.notes:
            console.print(f"  {escape(note)}")
        inside = cert.s_star[0] <= opt.total <= cert.s_star[1] and (
            cert.loss[0] <= opt.loss <= cert.loss[1] * (1 + 4e-16))
        console.print(f"  numeric optimum inside the enclosures: {'yes' if inside else 'NO'}")
        record["certificate"] = cert.to_dict()
    if json_path is not None:
        _write(json_path, record)
        console.print(f"wrote {json_path}")
    return 0


@app.command("claims")
def list_claims() -> int:
    """List the claim registry: ids, what each expects, statements and hypotheses."""
    from circeff.theory.claims import CLAIMS

    table = Table(title="Appendix D claims")
    for col in ("id", "expected", "statement", "hypotheses"):
        table.add_column(col, overflow="fold")
    for claim in CLAIMS.values():
        table.add_row(claim.id, claim.expected, escape(claim.statement),
                      escape("; ".join(claim.hypotheses)))
    _console().print(table)
    return 0
