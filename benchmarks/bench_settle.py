"""Time the batched L-BFGS settle against settling one model at a time, side by side.

    python benchmarks/bench_settle.py [--p 31] [--models 8] [--iterations 20] [--repeats 3]
                                      [--alpha 1e-3] [--threads N] [--device cpu|cuda]

(a) one at a time: :func:`circeff.empirical.settle.settle_model` for every model in turn
    (what the P1 stage did before the settle was batched);
(b) batched: :func:`circeff.empirical.settle.settle`, every model's own L-BFGS side by side,
    one batched evaluation per round.

The models are the paper's architecture at their initialisation, with training sets of
different sizes (fractions 0.3 to 0.6 of the dataset, as P1's networks have), so they take
different numbers of function evaluations. Printed: ms per model-iteration (median over
repeats, the two variants interleaved so that load on the machine hits both alike), the ratio,
and how far the batched result is from the one-at-a-time result (largest relative difference
of a model's settled norm).
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch

from _timing import add_timing_options, clock_of

from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig
from circeff.empirical.model import init_params, param_norm
from circeff.empirical.settle import settle, settle_model
from circeff.empirical.tasks import TaskConfig, make_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--p", type=int, default=31)
    ap.add_argument("--models", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=1e-3)
    add_timing_options(ap)
    args = ap.parse_args()
    clock = clock_of(args)
    task, cfg, E = TaskConfig("add", args.p), ModelConfig(), args.models
    dataset = make_dataset(task)
    n = len(dataset)
    sizes = [int(n * (0.3 + 0.3 * k / max(E - 1, 1))) for k in range(E)]
    config = TrainConfig(task=task, runs=tuple(RunSpec(seed=k, train_size=s, data_seed=k) for k, s in enumerate(sizes)),
                         model=cfg, device=args.device)
    params = init_params(cfg, task, range(E), args.device)
    print(f"P = {args.p}, {E} models (training sizes {sizes[0]}..{sizes[-1]}), model {cfg}, alpha {args.alpha}, "
          f"{args.iterations} L-BFGS iterations, device {args.device}, torch threads {torch.get_num_threads()}, "
          f"clock {args.clock}, load average {os.getloadavg()[0]:.2f}")

    def serial():
        runs = [settle_model(params, dataset, config, k, args.alpha, args.iterations) for k in range(E)]
        return torch.cat([param_norm(w) for w, _ in runs])

    def batched():
        return param_norm(settle(params, dataset, config, args.alpha, args.iterations)[0])

    variants = {"one model at a time": serial, "batched (all models)": batched}
    times: dict[str, list[float]] = {k: [] for k in variants}
    norms = {}
    for _ in range(args.repeats):
        for name, f in variants.items():
            t0 = clock()
            norms[name] = f()
            times[name].append((clock() - t0) / E / args.iterations)
    base = statistics.median(times["one model at a time"])
    print(f"{'variant':<24} {'ms/model-iteration':>19} {'(min..max)':>14} {'speed-up':>9}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<24} {med * 1e3:>19.2f} {f'({min(ts) * 1e3:.1f}..{max(ts) * 1e3:.1f})':>14} {base / med:>8.2f}x")
    a, b = norms["one model at a time"], norms["batched (all models)"]
    print(f"largest relative difference of a settled norm, batched vs one at a time: {float(((a - b).abs() / a).max()):.2e}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
