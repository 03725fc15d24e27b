"""Before/after of a backend change: two APIs (a baseline backend/ and the working tree's) on one database.

    python bench/ab_api.py --baseline-rev HEAD [--scenarios feed_anonymous,feed_logged_in] [--rounds 5]
    python bench/ab_api.py --baseline-dir /path/to/old/backend [--candidate-dir /path/to/new/backend] ...

Both servers run at once, pinned to the same core, and are loaded in turn (A, B, then B, A, ...), so
the machine's noise and any position effect hit both alike; the table shows medians and the B/A ratio of each round's pair.
The baseline is read with `git archive` (nothing in the work tree changes).
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_bench
from apistack import ROOT, BenchStack


def extract_backend(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", rev, "backend"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "backend"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--baseline-rev", help="a git revision whose backend/ is the baseline")
    source.add_argument("--baseline-dir", type=Path, help="a backend/ folder to use as the baseline")
    parser.add_argument(
        "--candidate-dir", type=Path, default=None, help="B's backend/ folder (default: the work tree's)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        help="KEY=VALUE for both APIs (repeatable), e.g. FEED_CACHE_ENTRIES=0",
    )
    parser.add_argument("--scenarios", default="feed_anonymous,feed_logged_in,media")
    parser.add_argument("--posts", type=int, default=api_bench.LOAD_SIZE)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--connections", type=int, default=api_bench.CONCURRENCY)
    args = parser.parse_args()
    names = [n for n in args.scenarios.split(",") if n]
    extra_env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp, BenchStack() as stack:
        baseline = args.baseline_dir or extract_backend(args.baseline_rev, Path(tmp))
        stack.seed_posts(args.posts)
        servers = {
            "A (baseline)": stack.start_server("api", backend_dir=baseline.resolve(), extra_env=extra_env),
            "B (work tree)": stack.start_server("api", backend_dir=args.candidate_dir, extra_env=extra_env),
        }
        ceiling = stack.start_server("ceiling")
        # (the *_uncached scenarios name the same server: use --env FEED_CACHE_ENTRIES=0 to compare misses)
        tables = {
            label: api_bench.scenarios(stack, server, ceiling, server) for label, server in servers.items()
        }
        db_pid = stack.postmaster_pid()
        runs: dict[tuple[str, str], list[dict[str, object]]] = {}
        for table in tables.values():  # warm-up
            for name in names:
                server, requests, _ = table[name]
                api_bench.loadgen.run(server.base_url, requests, seconds=2, connections=args.connections)
        for round_no in range(args.rounds):
            for name in names:
                order = list(tables.items())
                if round_no % 2:  # A, B in even rounds and B, A in odd ones: no position bias
                    order.reverse()
                for label, table in order:
                    server, requests, _ = table[name]
                    run = api_bench.measure(
                        server, requests, seconds=args.seconds, db_pid=db_pid, connections=args.connections
                    )
                    api_bench.wait_until_idle(server)
                    runs.setdefault((name, label), []).append(run)
                    print(
                        f"round {round_no + 1} {name:15s} {label:14s} {run['rps']:8.1f} req/s "
                        f"p50 {run['p50_ms']:7.2f} ms  api {run['api_cpu_ms_per_request']} ms/req "
                        f"db {run['db_cpu_ms_per_request']} ms/req",
                        flush=True,
                    )
        print()
        print(
            "| scenario | A req/s | B req/s | B/A (median of rounds) | A p50 ms | B p50 ms | A API CPU ms/req | B API CPU ms/req |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name in names:
            a, b = runs[(name, "A (baseline)")], runs[(name, "B (work tree)")]
            ratio = statistics.median(float(y["rps"]) / float(x["rps"]) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]

            def med(rs: list[dict[str, object]], key: str) -> float:
                return round(statistics.median(float(r[key]) for r in rs), 2)  # type: ignore[arg-type]

            print(
                f"| {name} | {med(a, 'rps')} | {med(b, 'rps')} | {ratio:.2f}x | {med(a, 'p50_ms')} | "
                f"{med(b, 'p50_ms')} | {med(a, 'api_cpu_ms_per_request')} | {med(b, 'api_cpu_ms_per_request')} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
