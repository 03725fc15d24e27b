"""The capacity review: one self-contained HTML page per load-test run (issue 10).

`python -m loadtests.capacity RUN_FOLDER` reads the run's files (summary.json, minutes.csv, Locust's
history CSV) and, when the stage's resource names are known, CloudWatch metrics for the same window; it
writes `capacity.html` (and `capacity.json`, the same figures for machines) into the run folder.

Layers: `cloudwatch.py` is the only code that talks to AWS (a thin boto3 layer); `analysis.py` is pure
(run files and metric series in, figures out); `page.py` draws the charts and writes the HTML.
"""
