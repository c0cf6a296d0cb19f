"""Run the link tests on one thread (the D.1 link trains tiny models; see tests/torch_threads.py)."""

from tests.torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)
