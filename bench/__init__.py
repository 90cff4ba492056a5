"""livepulse benchmark harness: ``python -m bench.run --help``."""
