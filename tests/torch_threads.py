"""One torch thread for the tests that train tiny transformers.

The test models are tiny: their steps are dominated by per-operation overhead, which OpenMP
makes worse when the 2 cores are shared with other processes (10x slower measured on a
loaded machine). The library itself never limits threads; a test folder opts in by importing
:func:`one_torch_thread` into its ``conftest.py``.
"""

from __future__ import annotations

import pytest
import torch


# Module scope: pytest sets up autouse fixtures first within a scope, so the module-scoped
# training fixtures (one tiny run shared by a file's tests) also run on one thread.
@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
