"""The regression gate: a load test compared with the accepted baseline of the same target, profile and shape.

- `metrics`: what a run folder says, per request group and overall (p50/p95/p99, failure ratio,
  throughput) and, where the capacity review read CloudWatch, per request (requests per task, CPU per
  request, Aurora ACUs per 100 req/s, cost per million requests); each with the run's own windows, which
  show how much the figure moves by itself.
- `compare`: the verdict per metric (improved / same / regressed) against the baseline: a change counts
  only when it exceeds both its relative bound and the noise the runs themselves show.
- `baseline`: the accepted baselines on disk (`reports/loadtest/baseline/<target>/<profile>/<shape>/`);
  `make loadtest-accept` adds the latest run, and the pipeline's release record adds the staging run of
  every release that reached prod (`pipeline/baseline.py` keeps them in the reports bucket).
- `report`: the "vs baseline" text, `regression.json`, the JUnit test cases, and the capacity page's section.
"""
