"""The DPHP benchmark (`make bench`, `python -m bench.run [--events N]`); see docs/benchmarks.md."""
