"""Every threshold and statistical setting the experiments and the decision rules share, stated
once and used by name.

A value here was fixed before any run was looked at. Where the paper gives it, the section is
named; where the paper's value was lost, the choice is ours and says so. A function that takes
one of these as a keyword argument uses the constant as its default, so a user may vary it
and the recorded ``rule`` in every verdict says what was applied.

This module imports nothing from the package, so every layer may read it.
"""

from __future__ import annotations

__all__ = [
    "BASE_GENERALISED_ACC",
    "CONFIDENCE_LEVEL",
    "EQUIVALENCE_LEVEL",
    "G_ONLY_TRIG_SHARE",
    "GENERALISED_TEST_ACC",
    "MAX_EXCLUDED_FRACTION",
    "MEMORISED_TRAIN_ACC",
    "N_BOOT",
]

# A network is G-only (its logits are the generalising circuit's) when the trig share of its
# correct-class logit is above this (the paper's Section 5.1).
G_ONLY_TRIG_SHARE = 0.95

# A run has memorised its training set when its train accuracy reaches this.
MEMORISED_TRAIN_ACC = 0.99

# A run has generalised (the "grokking" step of Figure 9) when its test accuracy reaches this.
GENERALISED_TEST_ACC = 0.95

# A base network of another operation (Figure 8) is continued only if its held-out accuracy
# reaches this: ungrokking is only defined for a network that generalised.
BASE_GENERALISED_ACC = 0.99

# Two-sided confidence level of every reported interval.
CONFIDENCE_LEVEL = 0.95

# Bootstrap replicates of a resampled interval where the caller does not say (an experiment's
# config states its own number; this is the default of the estimators it calls).
N_BOOT = 1000

# Level of the interval that an equivalence test (two one-sided tests at 5% each) reads.
EQUIVALENCE_LEVEL = 0.90

# At most this fraction of a design's runs may be left out as unconverged (run longer instead).
MAX_EXCLUDED_FRACTION = 0.2
