"""`circeff theory`: run the Appendix D claim checkers and solve Theorem D.4 instances.

- ``circeff theory check [--claims D1,D4.case2] [--json PATH] [--seed N] [--falsify]``
- ``circeff theory optimum --P 1.0,1.5,2.0 --q 2 --kappa 1 --alpha 0.01 --n-classes 113``
- ``circeff theory claims`` (the registry: ids, statements, hypotheses)
"""

from __future__ import annotations

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
    field = exc.field if exc.field.startswith("--") else "--" + exc.field.replace("_", "-")
    return ConfigError(field, exc.allowed, exc.got)


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
        False, "--falsify", help="Also run each claim with one hypothesis dropped; each "
        "must be refuted with a printed counterexample."),
) -> int:
    """Run the claim checkers; exit 1 if any claim's outcome is not what it expects."""
    from circeff.theory.check import run_claims

    V.integer_at_least("--seed", seed, 0)
    ids = _parse_ids(claims)
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
    n = len(report.results)
    if report.ok:
        expected_ref = [r.claim_id for r in report.results if r.expected == "refuted"]
        note = f"; refuted as expected: {', '.join(expected_ref)}" if expected_ref else ""
        console.print(f"{n} claims, all as expected{note} ({report.seconds:.1f} s)")
    else:
        console.print(f"[bold red]{len(report.failures)} of {n} claims not as expected: "
                      f"{', '.join(report.failures)}[/bold red] ({report.seconds:.1f} s)")
    if json_path is not None:
        write_json(json_path, report.to_dict())
        console.print(f"wrote {json_path}")
    return 0 if report.ok else 1


@app.command("optimum")
def optimum(
    P: str = typer.Option(..., "--P", help="Parameter norms P_i of the circuits, e.g. "
                          "1.0,1.5,2.0 (each > 0)."),
    q: float = typer.Option(2.0, "--q", help="Weight-decay norm exponent q > 0 (2 = L2)."),
    kappa: float = typer.Option(1.0, "--kappa", help="Layers kappa > 0: w scales the "
                                "parameters by w^(1/kappa)."),
    alpha: float = typer.Option(0.01, "--alpha", help="Weight-decay strength alpha > 0."),
    n_classes: int = typer.Option(113, "--n-classes", help="Classes n >= 2 of the "
                                  "cross-entropy L_x(s) = log(1 + (n-1) e^-s)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the optimum as JSON."),
    seed: int = typer.Option(0, "--seed", help="Seed of the multi-start minimiser."),
) -> int:
    """Minimise the D.4 effective loss numerically and compare with the closed form."""
    from circeff.theory import optima as O

    norms = V.parse_float_list("--P", P)
    V.integer_at_least("--seed", seed, 0)
    try:
        problem = O.OptimumProblem(norms, q, kappa, alpha, n_classes)
    except ConfigError as exc:
        raise _as_option(exc) from None
    opt = O.minimise(problem, seed=seed)
    console = _console()
    r = problem.r
    if opt.case == O.WINNER_TAKE_ALL:
        explain = f"q/kappa = {r:.4g} < 1: winner takes all (the minimal P keeps every weight)"
    elif opt.case == O.BOUNDARY:
        explain = ("q/kappa = 1: linear cost; all weight on the minimal P, any split among "
                   "tied minima is optimal")
    else:
        explain = (f"q/kappa = {r:.4g} > 1: power law, w_i ~ P_i^(-"
                   f"{O.power_law_exponent(q, kappa):.4g})")
    console.print(f"case: {opt.case} ({explain})")
    console.print("(the design card's 'q < 1 / q > 1' is q/kappa with kappa normalised to 1)")
    table = Table()
    for col in ("circuit", "P_i", "numeric w_i", "closed form w_i", "share"):
        table.add_column(col, justify="right")
    for i, p_i in enumerate(problem.P):
        cf = "-" if opt.closed_form is None else f"{opt.closed_form[i]:.10g}"
        table.add_row(str(i), f"{p_i:g}", f"{opt.weights[i]:.10g}", cf,
                      f"{opt.shares[i]:.6g}")
    console.print(table)
    console.print(f"loss at optimum: {opt.loss:.12g} (closed form: {opt.closed_form_loss:.12g}); "
                  f"total weight s* = {opt.total:.10g}; KKT residual {opt.kkt_residual:.2g}")
    if json_path is not None:
        write_json(json_path, {**opt.to_dict(), "seed": seed})
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
