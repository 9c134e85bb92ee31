"""Benchmarks: python bench/compare.py (gitops vs Swarm), python bench/proxy.py."""
