"""Time the batched engine against the plain way of training grokking transformers, side by side.

    python benchmarks/bench_engine.py [--p 113] [--train-frac 0.3] [--models 1,4,16]
                                      [--repeats 7] [--steps 3] [--threads N] [--device cpu|cuda]

(a) reference: one model at a time, full sequence (all 4 positions), an ``nn.Module`` with
    ``torch.optim.AdamW`` and a float64 cross-entropy on the last position, as in Nanda et al.
    2023's public code (:class:`circeff.empirical.model.Transformer`);
(b) the engine with E models at once: exactly what one step of ``circeff.empirical.train``
    does (loss and gradients of every model, the divergence check, batched AdamW), no logging.

Printed per variant: ms per model-step (median over repeats; each repeat times ``--steps``
steps; the variants are interleaved so that load on the machine hits all of them alike), the
speed-up over (a), and achieved GFLOP/s with the fraction of a torch matmul peak measured in
the same run (the best of square float32 matmuls of size 1024, 2048 and 3072).

FLOP count (documented, approximate; 2 per multiply-add), counting only matrix products (and
the engine's row sums that replace two of them), which dominate:
- reference, per example, forward + backward = 3 x forward: 4 positions x (Q, K, V:
  3 d_model H d_head; W_O: H d_head d_model; W_in, W_out: 2 d_model d_mlp; W_U: d_model P)
  + scores and mixing (2 H 4 4 d_head);
- engine: :func:`circeff.empirical.batched.training_matmul_flops`: per model and step the
  vocabulary tables (query, scores, the maps multiplied out and applied to every value: the
  rows per head and token that replace ``z W_OI`` and ``z W_OU``) and their backward, and
  per example the row sums (forward; backward: the rows' gradients and one dot per row),
  ``post W_outU`` and its two backward products.
Elementwise work (softmax, ReLU, the float64 loss, AdamW) is not counted, so GFLOP/s measure
how much of the time goes into useful matrix products.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from _timing import add_timing_options, clock_of

from circeff.empirical.config import ModelConfig, RunSpec, TrainConfig, resolve_train_size
from circeff.empirical.batched import training_matmul_flops, uses_fold
from circeff.empirical.model import Transformer, cross_entropy_high_precision, init_params
from circeff.empirical.optim import adamw_init, adamw_step
from circeff.empirical.tasks import TaskConfig, make_dataset, train_indices
from circeff.empirical.train import _models_finite, build_training_data, loss_and_grads


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, repeats: int = 5, clock=time.perf_counter) -> dict[int, float]:
    """GFLOP/s of square float32 matmuls (best of ``repeats``) per size."""
    out = {}
    for n in (1024, 2048, 3072):
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            _sync(device)
            t0 = clock()
            a @ b
            _sync(device)
            best = min(best, clock() - t0)
        out[n] = 2 * n**3 / best / 1e9
    return out


def reference_flops_per_step(cfg: ModelConfig, task: TaskConfig, n: int) -> float:
    hd = cfg.n_heads * cfg.d_head
    per_position = 3 * cfg.d_model * hd + hd * cfg.d_model + 2 * cfg.d_model * cfg.d_mlp + cfg.d_model * task.d_vocab_out
    attention = 2 * cfg.n_heads * task.n_ctx * task.n_ctx * cfg.d_head
    return 3 * 2 * n * (task.n_ctx * per_position + attention)


def engine_flops_per_model_step(cfg: ModelConfig, task: TaskConfig, n: int) -> float:
    return training_matmul_flops(cfg, task, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--p", type=int, default=113)
    ap.add_argument("--train-frac", type=float, default=0.3)
    ap.add_argument("--models", default="1,4,16")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    ap.add_argument("--chunk-size", type=int, default=None, help="engine models per chunk (default: the engine's)")
    ap.add_argument("--block-size", type=int, default=None, help="engine examples per block (default: the engine's)")
    add_timing_options(ap)
    args = ap.parse_args()
    clock = clock_of(args)
    device = torch.device(args.device)
    cfg, task = ModelConfig(), TaskConfig("add", args.p)
    n_train = resolve_train_size(task, args.train_frac, None)
    models = [int(x) for x in args.models.split(",")]
    print(f"P = {args.p}, training fraction {args.train_frac} (N = {n_train} examples), "
          f"model {cfg}, device {device}, torch threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"clock {args.clock}")

    # (a) the plain reference
    data = make_dataset(task)
    idx = torch.from_numpy(train_indices(len(data), n_train, 0))
    tokens = torch.from_numpy(data.tokens())[idx].to(device)
    labels = torch.from_numpy(data.labels.copy())[idx].to(device)
    ref = Transformer(cfg, task, seed=0).to(device)
    opt = torch.optim.AdamW(ref.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=1.0)

    def ref_step() -> None:
        loss = cross_entropy_high_precision(ref(tokens)[:, -1], labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # (b) the engine: what one step of the training loop does
    engines = {}
    for E in models:
        config = TrainConfig(task=task, runs=tuple(RunSpec(seed=s, train_size=n_train) for s in range(E)),
                             model=cfg, device=args.device, chunk_size=args.chunk_size, block_size=args.block_size)
        batch = build_training_data(data, config, device)
        params = init_params(cfg, task, range(E), device)
        state = adamw_init(params)
        wd = torch.ones(E, dtype=torch.float64, device=device)

        def engine_step(config=config, batch=batch, params=params, state=state, wd=wd) -> None:
            losses, grads = loss_and_grads(params, batch, config)
            assert bool(_models_finite(losses, grads).all())
            adamw_step(params, grads, state, lr=1e-3, beta1=0.9, beta2=0.98, eps=1e-8, weight_decay=wd)

        engines[E] = (engine_step, f"chunk {config.resolved_chunk_size}, block {config.resolved_block_size or 'all'}")

    variants = {"reference (1 model)": (ref_step, 1)} | {f"engine E={E} ({c})": (f, E) for E, (f, c) in engines.items()}
    for f, _ in variants.values():  # warm-up
        f()
    times: dict[str, list[float]] = {k: [] for k in variants}
    peaks = []
    for _ in range(args.repeats):
        for name, (f, E) in variants.items():
            _sync(device)
            t0 = clock()
            for _ in range(args.steps):
                f()
            _sync(device)
            times[name].append((clock() - t0) / args.steps / E)
    peaks = matmul_peak(device, clock=clock)
    peak = max(peaks.values())
    print("matmul peak (GFLOP/s): " + ", ".join(f"{n}^3: {g:.1f}" for n, g in peaks.items()) + f" -> peak {peak:.1f}")

    ref_flops = reference_flops_per_step(cfg, task, n_train)
    eng_flops = engine_flops_per_model_step(cfg, task, n_train)
    base = statistics.median(times["reference (1 model)"])
    print(f"FLOPs per model-step: reference {ref_flops / 1e9:.2f} G, engine {eng_flops / 1e9:.2f} G "
          f"(maps multiplied out: {uses_fold(cfg, task, n_train)})")
    print(f"{'variant':<36} {'ms/model-step':>14} {'(min..max)':>16} {'speed-up':>9} {'GFLOP/s':>8} {'% peak':>7}")
    for name, ts in times.items():
        med = statistics.median(ts)
        flops = ref_flops if name.startswith("reference") else eng_flops
        gflops = flops / med / 1e9
        print(f"{name:<36} {med * 1e3:>14.1f} {f'({min(ts) * 1e3:.0f}..{max(ts) * 1e3:.0f})':>16} "
              f"{base / med:>8.2f}x {gflops:>8.1f} {100 * gflops / peak:>6.0f}%")


if __name__ == "__main__":
    main()
