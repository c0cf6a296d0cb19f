"""Speed of the vectorised toy simulation against a plain per-configuration Python loop.

Target: 10^4 configurations x 10^4 steps in under 10 s on 2 cores. The batch
runs as one numpy computation on one core; the loop baseline is timed on a subset
(20 configurations x 10^4 steps by default) and compared per config-step. Both are timed
in the same run, each as the median of several repeats, and the loop's final weights are
checked against the batch's (same maths).

    python benchmarks/bench_toy.py                 # full size
    python benchmarks/bench_toy.py --configs 1000  # quicker
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from circeff.toy.simulate import ToyConfig, final_weights, simulate


def make_configs(n: int, steps: int, seed: int = 0) -> list[ToyConfig]:
    """``n`` configurations around Figure 2a (P_G, P_M, alpha, w_G2 varied), seeded."""
    rng = np.random.default_rng(seed)
    return [ToyConfig(P_G=float(rng.uniform(0.5, 3.0)), P_M=float(rng.uniform(0.5, 3.0)),
                      alpha=float(rng.uniform(0.002, 0.02)), w_G2=float(10 ** rng.uniform(-3, 0)),
                      steps=steps) for _ in range(n)]


def python_loop(configs: list[ToyConfig]) -> list[tuple[float, float]]:
    """The same gradient descent, one configuration at a time, in plain Python floats."""
    out = []
    for c in configs:
        a, b, cc, d = c.initial_subweights
        log_n1 = math.log(c.n_classes - 1)
        e = c.q / c.kappa / 2 - 1
        eps2 = max(c.wd_eps, 1e-150) ** 2
        lr_A_G = c.lr * c.alpha / c.kappa * c.P_G ** c.q
        lr_A_M = c.lr * c.alpha / c.kappa * c.P_M ** c.q
        for _ in range(c.steps):
            wG, wM = a * b, cc * d
            s = wG + wM - log_n1
            u = c.lr / (1.0 + (math.exp(s) if s < 700 else math.inf))
            fG = lr_A_G * wG * (wG * wG + eps2) ** e - u
            fM = lr_A_M * wM * (wM * wM + eps2) ** e - u
            a, b = a - b * fG, b - a * fG
            cc, d = cc - d * fM, d - cc * fM
        out.append((a * b, cc * d))
    return out


def median_time(fn, repeats: int) -> tuple[float, object]:  # noqa: ANN001
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--loop-configs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    configs = make_configs(args.configs, args.steps)
    t_vec, run = median_time(lambda: simulate(configs), args.repeats)
    subset = configs[: args.loop_configs]
    t_loop, loop_w = median_time(lambda: python_loop(subset), args.repeats)

    w_G, w_M = final_weights(run)
    np.testing.assert_allclose(np.array(loop_w), np.stack([w_G, w_M], 1)[: len(subset)], rtol=1e-9, atol=1e-12)

    vec_rate = args.configs * args.steps / t_vec
    loop_rate = len(subset) * args.steps / t_loop
    extrapolated = args.configs * args.steps / loop_rate
    print(f"{'method':<26}{'configs':>9}{'steps':>9}{'seconds':>12}{'config-steps/s':>17}{'ratio':>9}")
    print(f"{'vectorised numpy batch':<26}{args.configs:>9}{args.steps:>9}{t_vec:>12.3f}{vec_rate:>17.3e}"
          f"{vec_rate / loop_rate:>9.1f}")
    print(f"{'python loop (measured)':<26}{len(subset):>9}{args.steps:>9}{t_loop:>12.3f}{loop_rate:>17.3e}"
          f"{1.0:>9.1f}")
    print(f"{'python loop (extrapolated)':<26}{args.configs:>9}{args.steps:>9}{extrapolated:>12.1f}"
          f"{loop_rate:>17.3e}{1.0:>9.1f}")
    print(f"medians of {args.repeats} repeats; diverged configurations: {int((run.diverged_step >= 0).sum())}; "
          f"target: 10^4 x 10^4 under 10 s -> {'met' if t_vec < 10 else 'NOT met'} "
          f"({'full size' if args.configs * args.steps >= 10**8 else 'reduced size'})")


if __name__ == "__main__":
    main()
