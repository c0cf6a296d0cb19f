"""Transformer experiments of the paper (Section 5 and Appendix A of the paper): tasks, a batched training engine, analysis.

Modules, in reading order:

- :mod:`~circeff.empirical.tasks`: the ten binary-operation tasks (registry), datasets, splits.
- :mod:`~circeff.empirical.config`: ``ModelConfig``, ``RunSpec`` (one model), ``TrainConfig``.
- :mod:`~circeff.empirical.model`: the one-layer transformer, written plainly (read it first).
- :mod:`~circeff.empirical.batched`: E such models in stacked tensors, last position only (training).
- :mod:`~circeff.empirical.optim`: AdamW with one weight decay per model.
- :mod:`~circeff.empirical.metrics`: float64 loss, metric rows, grokking milestones.
- :mod:`~circeff.empirical.checkpoint`: atomic checkpoints, exact resume.
- :mod:`~circeff.empirical.train`: the training loop (``train(config, out_dir, resume=...)``).
- :mod:`~circeff.empirical.presets`: every named setting, keyed by experiment and scale.
- :mod:`~circeff.empirical.fourier`: trigonometric / memorisation logit decomposition.
"""
