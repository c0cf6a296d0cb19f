"""Hypothesis strategies for the empirical layer (tasks, small models)."""

from __future__ import annotations

from hypothesis import strategies as st

from circeff.empirical.config import ModelConfig
from circeff.empirical.tasks import TASKS

SMALL_PRIMES = (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)
GROUP_SIZES = (6, 24, 120)


@st.composite
def task_and_p(draw, tasks=tuple(TASKS)):
    """A task name and a P for which it is defined (primes; n! for perm)."""
    name = draw(st.sampled_from(tasks))
    p = draw(st.sampled_from(GROUP_SIZES if TASKS[name].is_permutation_group else SMALL_PRIMES))
    return name, p


def tiny_model_configs():
    """Small architectures (fast tests); the engine must be exact for any of them."""
    return st.builds(ModelConfig, d_model=st.sampled_from([8, 16, 24]), n_heads=st.integers(1, 3),
                     d_head=st.sampled_from([4, 8]), d_mlp=st.sampled_from([16, 32]))
