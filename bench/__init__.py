"""Benchmarks that print ratios against bare Django (and peers) measured in one run."""
