"""The paper's measured experiments, each a frozen config, a ``run_*`` function and presets.

- :mod:`.efficiency` - prediction P1: memorisation-only (random labels) and generalisation-only
  networks over D and weight decay; fits of P(D) per circuit, verdict, crossover D_crit.
- :mod:`.progress` - Figure 9: a grokking run with weight snapshots; the G and M
  correct-logit proxies and the parameter norm over training.
- :mod:`.ungrokking`, :mod:`.semigrokking`, :mod:`.fig10` - predictions P2-P4 and Figure 10.

Every experiment trains through the batched engine (:func:`circeff.empirical.train.train`)
and measures circuits through :mod:`circeff.empirical.circuits`; statistics and figures come
from :mod:`circeff.analysis`. Rerunning an experiment on the same out folder skips finished
training.
"""
