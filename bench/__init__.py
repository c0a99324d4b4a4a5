"""Benchmarks and the baselines they compare against (not part of the workflow)."""
