"""Tests of the load tests and the capacity review (run with pytest from the repository root)."""
