"""Sweeps: run grids of configs through one executor interface into an idempotent result store."""
