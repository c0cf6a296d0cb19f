"""Run the engine tests on one thread (tiny models; see tests/torch_threads.py for why)."""

from tests.torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)
