"""`make chaos`: the local fault suite (devstack/README.md, "The fault suite").

It starts the real local stack (`python -m devstack up`, its own LOCAL_DIR and free ports), drives a steady
load through it (registrations, uploads, feed and media reads), applies one fault after another (kill -9
PostgreSQL, hang the S3 server, kill -9 the S3 server, kill -9 the event worker, kill -9 `devstack up`
itself), restarts as a user would, and then checks that nothing was lost and that no request failed in
a way it should not have:

- `verdict.py`: the pure part: request records, fault windows, the table and every assertion;
- `load.py`: the load driver (threads with httpx; every request recorded: time, route, status);
- `control.py`: the stack as a user runs it, and the faults;
- `suite.py`: the run itself, its progress output and its report in `reports/chaos/<timestamp>/`.
"""
