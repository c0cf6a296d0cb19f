"""Hypothesis strategies shared by the test suites, one module per layer."""
