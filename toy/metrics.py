"""When did the toy fit, and when did it grok? Definitions used by every toy command.

Both losses start at chance, ``log(n)`` (all logits zero). With ``threshold = 0.5``:

- ``fit_step``: the first recorded step at which the train loss is at most
  ``threshold * log(n)``, i.e. has fallen half-way from chance to zero.
- ``grokking_step``: the first recorded step, at or after ``fit_step``, from which the test
  loss stays at most ``threshold * log(n)`` until the end of the run; ``None`` when that
  never happens (test loss never falls, or falls only for a while and rises again, as
  when both circuits start at the same speed but G is the less efficient one) or the
  train loss never falls. "Stays" makes it a statement about lasting generalisation.
- ``grokking_delay``: ``grokking_step / fit_step``, how many times longer generalising
  took than fitting (1 = test loss falls at once, as in Figure 2c). On the log-step axis
  of Figure 2 this ratio is the visible gap.

Steps are the recorded (log-spaced) steps, so these are exact up to the recording grid
(about 5% resolution with 200 records over 5 x 10^4 steps).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

DEFAULT_THRESHOLD = 0.5


def fit_step(steps: ArrayLike, train_loss: ArrayLike, n_classes: int,
             threshold: float = DEFAULT_THRESHOLD) -> int | None:
    """First recorded step with ``train_loss <= threshold * log(n_classes)``, or None."""
    steps = np.asarray(steps)
    hit = np.flatnonzero(np.asarray(train_loss) <= threshold * math.log(n_classes))
    return int(steps[hit[0]]) if hit.size else None


def grokking_step(steps: ArrayLike, train_loss: ArrayLike, test_loss: ArrayLike, n_classes: int,
                  threshold: float = DEFAULT_THRESHOLD) -> int | None:
    """First recorded step at or after :func:`fit_step` from which ``test_loss <= threshold * log(n)``
    holds at every later recorded step."""
    fit = fit_step(steps, train_loss, n_classes, threshold)
    if fit is None:
        return None
    steps = np.asarray(steps)
    above = np.flatnonzero(np.asarray(test_loss) > threshold * math.log(n_classes))
    first_low = 0 if above.size == 0 else above[-1] + 1   # start of the final run of low test loss
    if first_low >= steps.size:
        return None
    return int(max(steps[first_low], fit))


def grokking_delay(steps: ArrayLike, train_loss: ArrayLike, test_loss: ArrayLike, n_classes: int,
                   threshold: float = DEFAULT_THRESHOLD) -> float | None:
    """``grokking_step / fit_step`` (>= 1), or None when the toy never groks."""
    fit = fit_step(steps, train_loss, n_classes, threshold)
    grok = grokking_step(steps, train_loss, test_loss, n_classes, threshold)
    if fit is None or grok is None:
        return None
    return grok / max(fit, 1)
