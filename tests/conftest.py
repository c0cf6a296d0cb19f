"""Shared pytest configuration: hypothesis profiles.

Choose a profile with HYPOTHESIS_PROFILE=dev|ci|thorough. CI (CI=true) uses `ci`
by default; a plain local run uses `dev`. `thorough` is for long runs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def quiet_cores(monkeypatch):
    """Tests see quiet cores: the busy-cores warning (circeff.cli.common.busy_cores) reads the
    machine's load, which the test run itself raises; the tests of that warning set the load."""
    monkeypatch.setattr("os.getloadavg", lambda: (0.0, 0.0, 0.0))
