"""Locust load tests that gate a release, and the capacity review built from their runs.

`python -m loadtests run` runs Locust as a subprocess (its gevent monkey-patching never enters the caller)
and writes one report folder per run; `python -m loadtests.capacity RUN_FOLDER` turns that folder (and,
against AWS, CloudWatch metrics) into one HTML page. Everything that imports Locust lives in
`locustfile.py` and `users/`; the rest is plain Python that the tests import directly.
"""
