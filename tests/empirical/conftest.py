"""Run the engine tests on one thread.

The test models are tiny: their steps are dominated by per-operation overhead, which
OpenMP makes worse when the 2 cores are shared with other processes (10x slower measured
on a loaded machine). The library itself never limits threads.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
