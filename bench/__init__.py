"""Benchmarks: `make bench` runs them, writes bench/results/*.json and the
table in bench/README.md."""
