"""API benchmark: throughput and latency under load, the ceiling, /health under a fixed load, growth.

    python bench/api_bench.py [--json out.json] [--seconds 8] [--rounds 3] [--sizes 10000,100000,1000000]

Run by ``bench/run.py`` (``make bench``). The stack (``apistack.BenchStack``) puts the load generator on
core 0 and the API and its PostgreSQL on core 1; every figure is printed with its conditions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import apistack
import loadgen
from apistack import BenchStack, ServerProcess
from loadgen import Request, RunResult

FEED = "/api/v1/feed/latest"  # default page size: 50 posts
CONCURRENCY = 16
TOKENS = 16  # the logged-in scenarios rotate over this many members
MEDIA_IDS = 200
HEALTH_PROBE_RATE = 50.0  # requests a second of /health while the feeds run at a fixed rate
GROWTH_SIZES = (10_000, 100_000, 1_000_000)
LOAD_SIZE = 100_000  # the dataset of the load scenarios
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- CPU accounting: what the server side spent per request ----------------------------------------
def _cpu_seconds(root_pid: int) -> dict[int, float]:
    """utime + stime of `root_pid` and its direct children (uvicorn workers; PostgreSQL backends)."""
    out: dict[int, float] = {}
    for pid in apistack._pids_of_tree(root_pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def measure(
    server: ServerProcess, requests: list[Request], *, seconds: float, db_pid: int | None, **kwargs: Any
) -> dict[str, Any]:
    """One wrk run plus the CPU the server, the database and the generator spent during it."""
    api_before = _cpu_seconds(server.process.pid)
    db_before = _cpu_seconds(db_pid) if db_pid else {}
    gen_before = _children_cpu()
    result = loadgen.run(server.base_url, requests, seconds=seconds, **kwargs)
    gen_cpu = _children_cpu() - gen_before
    api_cpu = _spent(api_before, _cpu_seconds(server.process.pid))
    db_cpu = _spent(db_before, _cpu_seconds(db_pid)) if db_pid else 0.0
    n = max(1, result.requests)
    return {
        **asdict(result),
        "api_cpu_ms_per_request": round(api_cpu * 1000 / n, 3),
        "db_cpu_ms_per_request": round(db_cpu * 1000 / n, 3),
        "generator_core_busy": round(gen_cpu / max(result.seconds, 0.001), 3),
    }


# --- scenarios ----------------------------------------------------------------------------------
def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def scenarios(
    stack: BenchStack, api: ServerProcess, ceiling: ServerProcess, uncached: ServerProcess
) -> dict[str, tuple[ServerProcess, list[Request], str]]:
    """name -> (server, requests cycled through, what it is)."""
    tokens = stack.tokens(TOKENS)
    login_body = [
        json.dumps({"username": f"bench_{i}", "password": apistack.PASSWORD}) for i in range(TOKENS)
    ]
    json_type = {"Content-Type": "application/json"}
    return {
        "ceiling": (
            ceiling,
            [Request("/ceiling")],
            "bare FastAPI endpoint returning a constant (no middleware)",
        ),
        "health": (
            api,
            [Request("/api/v1/health")],
            "the API's /health (a constant, through its middleware)",
        ),
        "feed_anonymous": (api, [Request(FEED)], "GET /feed/latest, anonymous: 50 public posts"),
        "feed_logged_in": (
            api,
            [Request(FEED, headers=bearer(t)) for t in tokens],
            f"GET /feed/latest with a bearer token ({TOKENS} members): public + own private, 50 posts",
        ),
        "feed_anonymous_uncached": (
            uncached,
            [Request(FEED)],
            "the anonymous feed with the feed cache off (FEED_CACHE_ENTRIES=0): every page from the database, "
            "as right after a write",
        ),
        "feed_logged_in_uncached": (
            uncached,
            [Request(FEED, headers=bearer(t)) for t in tokens],
            "the logged-in feed with the feed cache off",
        ),
        "media": (
            api,
            [Request(f"/api/v1/images/media/{i}") for i in stack.public_media_ids(MEDIA_IDS)],
            f"GET /images/media/{{id}}, anonymous, {MEDIA_IDS} public posts (uploaded or ready)",
        ),
        "generate": (
            api,
            [Request("/api/v1/images/upload/public/generate", "POST", bearer(t)) for t in tokens],
            "POST /images/upload/public/generate (pending row + presigned POST)",
        ),
        "login": (
            api,
            [Request("/api/v1/auth/login/", "POST", json_type, body) for body in login_body],
            "POST /auth/login/ (argon2id verify with the app's parameters: slow on purpose)",
        ),
    }


def feed_mix(stack: BenchStack) -> list[Request]:
    """Half anonymous feed pages, half logged-in ones (TOKENS members), interleaved."""
    mix: list[Request] = []
    for token in stack.tokens(TOKENS):
        mix += [Request(FEED), Request(FEED, headers=bearer(token))]
    return mix


LOGIN_MIN_SECONDS = 15  # a login takes ~50 ms of CPU: 16 clients need a long run for enough samples


def wait_until_idle(server: ServerProcess, *, limit_s: float = 60) -> None:
    """Wait until the server's processes stop working off requests whose clients are gone (logins)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = _cpu_seconds(server.process.pid)
        time.sleep(0.5)
        if _spent(before, _cpu_seconds(server.process.pid)) < 0.05:
            return


def load_suite(
    stack: BenchStack,
    api: ServerProcess,
    ceiling: ServerProcess,
    uncached: ServerProcess,
    *,
    rounds: int,
    seconds: float,
) -> dict[str, Any]:
    """Every scenario, closed loop with CONCURRENCY clients, `rounds` times interleaved; medians."""
    table = scenarios(stack, api, ceiling, uncached)
    db_pid = stack.postmaster_pid()
    for name, (server, requests, _) in table.items():  # warm-up: imports, pools, prepared statements
        loadgen.run(server.base_url, requests, seconds=2 if name != "login" else 4, connections=CONCURRENCY)
        wait_until_idle(server)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in table}
    for round_no in range(1, rounds + 1):
        for name, (server, requests, _) in table.items():
            length = max(seconds, LOGIN_MIN_SECONDS) if name == "login" else seconds
            run = measure(server, requests, seconds=length, db_pid=db_pid, connections=CONCURRENCY)
            wait_until_idle(server)
            runs[name].append(run)
            log(
                f"  round {round_no}/{rounds} {name:15s} {run['rps']:8.1f} req/s  p50 {run['p50_ms']:7.2f} "
                f"p95 {run['p95_ms']:7.2f} p99 {run['p99_ms']:7.2f} ms  errors {run['errors'] or 0}"
            )
    out: dict[str, Any] = {}
    for name, (_, _, what) in table.items():
        out[name] = {"what": what, **_median_run(runs[name]), "runs": runs[name]}
    # Ratios per round (the same minutes of machine noise), then the median.
    for feed in (
        "feed_anonymous",
        "feed_logged_in",
        "health",
        "feed_anonymous_uncached",
        "feed_logged_in_uncached",
    ):
        ratios = [f["rps"] / c["rps"] for f, c in zip(runs[feed], runs["ceiling"], strict=True)]
        out[feed]["fraction_of_ceiling"] = round(statistics.median(ratios), 3)
        out[feed]["fraction_of_ceiling_per_round"] = [round(r, 3) for r in ratios]
    return out


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("rps", "p50_ms", "p95_ms", "p99_ms", "api_cpu_ms_per_request", "db_cpu_ms_per_request")
    merged: dict[str, Any] = {k: round(statistics.median(float(r[k]) for r in runs), 3) for k in keys}
    merged["generator_core_busy_max"] = max(float(r["generator_core_busy"]) for r in runs)
    merged["failed_requests"] = sum(sum(r["errors"].values()) for r in runs)
    merged["requests"] = sum(int(r["requests"]) for r in runs)
    return merged


def health_under_fixed_load(
    stack: BenchStack,
    api: ServerProcess,
    *,
    anonymous_max_rps: float,
    logged_in_max_rps: float,
    seconds: float,
    rounds: int,
) -> dict[str, Any]:
    """/health's latency while the feeds (half anonymous, half logged-in) run at half their capacity.

    The capacity of the 50/50 mix is the harmonic mean of the two maxima (each request costs 1/max of the
    API's time); half of it keeps the API about half busy. /health is probed at HEALTH_PROBE_RATE by a
    second wrk process with its own connections.
    """
    capacity = 1 / (0.5 / anonymous_max_rps + 0.5 / logged_in_max_rps)
    rate = round(capacity / 2, 1)
    mix = feed_mix(stack)
    health = [Request("/api/v1/health")]
    rounds_out = []
    for round_no in range(1, rounds + 1):
        with ThreadPoolExecutor(max_workers=2) as pool:
            feeds = pool.submit(
                loadgen.run, api.base_url, mix, seconds=seconds, connections=CONCURRENCY, rate=rate
            )
            time.sleep(1)  # the feeds reach their rate first
            probe = pool.submit(
                loadgen.run, api.base_url, health, seconds=seconds - 2, connections=4, rate=HEALTH_PROBE_RATE
            )
            feed_run, probe_run = feeds.result(), probe.result()
        rounds_out.append({"feeds": asdict(feed_run), "health": asdict(probe_run)})
        log(
            f"  round {round_no}/{rounds} feeds at {feed_run.rps:.1f}/{rate} req/s (p99 {feed_run.p99_ms} ms); "
            f"/health at {probe_run.rps:.1f} req/s: p50 {probe_run.p50_ms} p99 {probe_run.p99_ms} ms"
        )
    return {
        "feed_rate_target_rps": rate,
        "feed_mix_capacity_rps": round(capacity, 1),
        "feed_rps": statistics.median(r["feeds"]["rps"] for r in rounds_out),
        "feed_p50_ms": statistics.median(r["feeds"]["p50_ms"] for r in rounds_out),
        "feed_p99_ms": statistics.median(r["feeds"]["p99_ms"] for r in rounds_out),
        "health_rps": statistics.median(r["health"]["rps"] for r in rounds_out),
        "health_p50_ms": statistics.median(r["health"]["p50_ms"] for r in rounds_out),
        "health_p99_ms": statistics.median(r["health"]["p99_ms"] for r in rounds_out),
        "health_p99_ms_per_round": [r["health"]["p99_ms"] for r in rounds_out],
        "health_connections": 4,
        "health_probe_rate_rps": HEALTH_PROBE_RATE,
        "seconds": seconds,
        "rounds": rounds_out,
    }


# --- the feeds while posts change ----------------------------------------------------------------------
BY_USER = "/api/v1/feed/by_user/"
HEAD_RATES = (0.0, 10.0, 100.0, 1000.0)  # feed-visible commits a second while the head-page mix runs
SPREAD_RATES = (0.0, 100.0)  # ... while the spread mix runs
WRITER_CONNECTIONS = 4  # the writer's connections (1,000 commits/s need more than one round trip at a time)

# What each writer changes: a post flips between `uploaded` and `ready`, as the event worker moves posts
# (a change every card shows; nothing appears or goes, so the readers' cursors stay valid).
HEAD_WRITES = (
    "SELECT id FROM images WHERE public AND state IN ('uploaded', 'ready') "
    "ORDER BY created_at DESC, id DESC LIMIT 20"
)
SPREAD_WRITES = (
    "SELECT id FROM images WHERE state IN ('uploaded', 'ready') "
    "AND created_at < (SELECT max(created_at) FROM images) - interval '10 minutes' "
    "ORDER BY md5(id::text) LIMIT 1000"
)

# Runs in its own process, pinned to the generator's core: commits one feed-visible change at a time on
# each of argv[4] connections (each its own share of the posts, so they never wait on each other's rows),
# together at a fixed rate.
_WRITER = """
import asyncio, sys, time
import asyncpg

async def writer(dsn, ids, rate, seconds, start):
    connection = await asyncpg.connect(dsn)
    flip = await connection.prepare(
        "UPDATE images SET state = CASE state WHEN 'ready' THEN 'uploaded' ELSE 'ready' END, "
        "updated_at = now() WHERE id = $1")
    done = 0
    while time.monotonic() - start < seconds:
        await flip.fetch(ids[done % len(ids)])
        done += 1
        delay = start + done / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    await connection.close()
    return done

async def main(dsn, rate, seconds, connections, chosen):
    setup = await asyncpg.connect(dsn)
    ids = [row[0] for row in await setup.fetch(chosen)]
    await setup.close()
    start = time.monotonic()
    done = await asyncio.gather(*(
        writer(dsn, ids[i::connections], rate / connections, seconds, start) for i in range(connections)))
    print(sum(done), time.monotonic() - start)

asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
"""


def _get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers=headers or {})  # loopback only
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def spread_mix(stack: BenchStack, api: ServerProcess) -> list[Request]:
    """Head, cursor and `by_user` pages, anonymous and logged in: for each of TOKENS members, their head
    page, the second page of `latest` (anonymous), the third (theirs), another member's page (anonymous),
    their own page, and another member's second page (logged in). One request in six is a head page."""
    tokens = stack.tokens(TOKENS)

    def next_page(path: str) -> str:
        """The path of the page after `path`'s (itself when it is the last: small datasets)."""
        cursor = _get_json(api.base_url + path)["next_cursor"]
        return f"{path.split('?')[0]}?cursor={cursor}" if cursor else path

    second = next_page(FEED)
    third = next_page(second)
    mix: list[Request] = []
    for index, token in enumerate(tokens):
        own = f"{BY_USER}{apistack.user_id(index)}"
        other = f"{BY_USER}{apistack.user_id((index + 1) % TOKENS)}"
        mix += [
            Request(FEED, headers=bearer(token)),
            Request(second),
            Request(third, headers=bearer(token)),
            Request(other),
            Request(own, headers=bearer(token)),
            Request(next_page(other), headers=bearer(token)),
        ]
    return mix


def _start_writer(stack: BenchStack, rate: float, seconds: float, chosen: str) -> subprocess.Popen[str]:
    dsn = stack.database_url.replace("postgresql+asyncpg://", "postgresql://")
    argv = [sys.executable, "-c", _WRITER, dsn, str(rate), str(seconds), str(WRITER_CONNECTIONS), chosen]
    return subprocess.Popen(["taskset", "-c", str(stack.aux_core), *argv], stdout=subprocess.PIPE, text=True)


def feeds_under_writes(
    stack: BenchStack, api: ServerProcess, ceiling: ServerProcess, *, seconds: float, rounds: int
) -> dict[str, Any]:
    """Two feed mixes, closed loop, while posts change at fixed rates; the ceiling in every round.

    * `head`: the head page of `latest`, half anonymous, half logged in (TOKENS members), while the 20
      newest public posts change: every change is in the window of the pages read;
    * `spread`: head, cursor and `by_user` pages (`spread_mix`), while older posts, public and private,
      change (one in five of the dataset's posts is private).

    Rounds interleave every (mix, rate) and the ceiling; each run's fraction of the ceiling is taken
    against its own round's ceiling, then the median.
    """
    mixes = {
        "head": (feed_mix(stack), HEAD_WRITES, HEAD_RATES),
        "spread": (spread_mix(stack, api), SPREAD_WRITES, SPREAD_RATES),
    }
    db_pid = stack.postmaster_pid()
    for requests, _, _ in mixes.values():  # warm-up: every page validated once and cached
        loadgen.run(api.base_url, requests, seconds=2, connections=CONCURRENCY)
    runs: dict[str, dict[float, list[dict[str, Any]]]] = {
        name: {rate: [] for rate in rates} for name, (_, _, rates) in mixes.items()
    }
    ceilings: list[float] = []
    for round_no in range(1, rounds + 1):
        ceilings.append(loadgen.run(ceiling.base_url, [Request("/ceiling")], seconds=seconds).rps)
        for name, (requests, chosen, rates) in mixes.items():
            for rate in rates:
                writer = _start_writer(stack, rate, seconds + 1, chosen) if rate else None
                if writer is not None:
                    time.sleep(0.5)
                run = measure(api, requests, seconds=seconds, db_pid=db_pid, connections=CONCURRENCY)
                if writer is not None:
                    done, took = writer.communicate(timeout=seconds + 30)[0].split()
                    run["writes_per_s"] = round(int(done) / float(took), 1)
                run["ceiling_rps"] = ceilings[-1]
                runs[name][rate].append(run)
                log(
                    f"  round {round_no}/{rounds} {name} at {rate:g} commits/s: {run['rps']:.0f} req/s "
                    f"({run['rps'] / ceilings[-1]:.0%} of the ceiling), p99 {run['p99_ms']} ms"
                )
    out: dict[str, Any] = {"ceiling_rps": statistics.median(ceilings), "ceiling_rps_per_round": ceilings}
    for name, by_rate in runs.items():
        out[name] = {}
        for rate, rate_runs in by_rate.items():
            merged = _median_run(rate_runs)
            ratios = [r["rps"] / r["ceiling_rps"] for r in rate_runs]
            merged["fraction_of_ceiling"] = round(statistics.median(ratios), 3)
            merged["fraction_of_ceiling_per_round"] = [round(r, 3) for r in ratios]
            if rate:
                merged["writes_per_s"] = statistics.median(r["writes_per_s"] for r in rate_runs)
            merged["runs"] = rate_runs
            out[name][f"{rate:g}"] = merged
    return out


ACTIVE_MEMBERS = 10_000


def _rss_kib(root_pid: int) -> int:
    total = 0
    for pid in apistack._pids_of_tree(root_pid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


SMALL_MEMBER_BYTES = 4 * 2**20  # a second worker with this budget shows the bound at work


def _memory_of_members(stack: BenchStack, tokens: list[str], member_bytes: int) -> dict[str, Any]:
    api = stack.start_server("api", extra_env={"FEED_CACHE_MEMBER_BYTES": str(member_bytes)})
    try:
        loadgen.run(api.base_url, [Request(FEED), Request(FEED, headers=bearer(tokens[0]))], seconds=2)
        requests = [Request(FEED, headers=bearer(token)) for token in tokens]
        before = _rss_kib(api.process.pid)
        served = 0
        started = time.monotonic()
        while served < 2 * len(tokens) and time.monotonic() - started < 120:
            served += loadgen.run(api.base_url, requests, seconds=5, connections=CONCURRENCY).requests
        after = _rss_kib(api.process.pid)
    finally:
        stack.stop_server(api)
    return {
        "member_bytes_budget_mib": round(member_bytes / 2**20, 1),
        "requests": served,
        "rss_before_mib": round(before / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "rss_growth_mib": round((after - before) / 1024, 1),
    }


def cache_memory(stack: BenchStack, *, members: int = ACTIVE_MEMBERS) -> dict[str, Any]:
    """Resident memory of a fresh API worker before and after `members` members each read their head page
    (a private part and an `active` entry each), at least twice over: with the default
    FEED_CACHE_MEMBER_BYTES, and with a small one (the bound at work).

    Fresh workers: one that served the login scenario holds hundreds of MB of argon2 memory in its
    allocator, which would hide what the cache adds. Before the first reading each worker has served the
    head page anonymously and to one member (shared part, cards, pools warm)."""
    stack.seed_members(members)
    tokens = stack.tokens(members)
    default = _memory_of_members(stack, tokens, apistack.MEMBER_BYTES)
    small = _memory_of_members(stack, tokens, SMALL_MEMBER_BYTES)
    return {"members": members, **default, "small_budget": small, "shared_entries": apistack.FEED_ENTRIES}


SECTIONS = ("growth", "load", "writes", "memory")
GROWTH_ROUNDS = 5


def growth_point(
    stack: BenchStack, api: ServerProcess, *, seconds: float, rounds: int
) -> dict[str, dict[str, Any]]:
    """Feed latency with one client (no queueing: the p50 is the service time), both feeds.

    The service time is now ~1.2 ms, and on this shared machine whole rounds shift by +0.6 ms when other
    work runs (seen at 10,000 posts as much as at 1,000,000). The sizes cannot be interleaved (the table
    only grows), so the figure compared across sizes is the *lowest* round p50 of `rounds` rounds:
    interference only ever adds to it. Every round's p50 and the median are recorded too.
    """
    tokens = stack.tokens(TOKENS)
    table = {
        "feed_anonymous": [Request(FEED)],
        "feed_logged_in": [Request(FEED, headers=bearer(t)) for t in tokens],
    }
    for requests in table.values():
        loadgen.run(api.base_url, requests, seconds=2, connections=1)
    runs: dict[str, list[RunResult]] = {name: [] for name in table}
    for _ in range(rounds):
        for name, requests in table.items():
            runs[name].append(loadgen.run(api.base_url, requests, seconds=seconds, connections=1))
    return {
        name: {
            "p50_ms": round(min(r.p50_ms for r in rs), 2),
            "p50_ms_median_of_rounds": round(statistics.median(r.p50_ms for r in rs), 2),
            "p95_ms": round(statistics.median(r.p95_ms for r in rs), 2),
            "p99_ms": round(statistics.median(r.p99_ms for r in rs), 2),
            "rps_one_client": round(statistics.median(r.rps for r in rs), 1),
            "p50_ms_per_round": [r.p50_ms for r in rs],
            "failed_requests": sum(r.failed for r in rs),
        }
        for name, rs in runs.items()
    }


def postgres_version(stack: BenchStack) -> str:
    return stack.sql("SHOW server_version")


def run(
    *,
    seconds: float = 8,
    rounds: int = 3,
    sizes: tuple[int, ...] = GROWTH_SIZES,
    load_size: int = LOAD_SIZE,
    workers: int = 1,
    fixed_seconds: float = 20,
    sections: tuple[str, ...] = SECTIONS,
    progress: Callable[[str], None] = log,
) -> dict[str, Any]:
    """The API benchmark on a fresh stack (every section unless told otherwise); returns the results with
    their conditions."""
    wrk = loadgen.ensure_wrk()
    wrk_version = subprocess.run(
        [wrk, "--version"], capture_output=True, text=True, check=False
    ).stdout.split("\n")[0]
    results: dict[str, Any] = {}
    growth: dict[str, Any] = {}
    sizes = tuple(sorted(set(sizes)))
    with BenchStack() as stack:
        progress(
            f"API bench: PostgreSQL {postgres_version(stack)} on core {stack.db_core}, API on core {stack.api_core}"
        )
        api = stack.start_server("api", workers=workers)
        ceiling = stack.start_server("ceiling", workers=workers)
        uncached = stack.start_server("api", workers=workers, extra_env={"FEED_CACHE_ENTRIES": "0"})
        conditions = {
            "cores": os.cpu_count(),
            "pinning": {
                "load_generator (wrk, 1 thread)": f"core {0}",
                "api (uvicorn)": f"core {stack.api_core}",
                "ceiling app (uvicorn)": f"core {stack.api_core}",
                "postgresql (postmaster and every backend)": f"core {stack.db_core}",
                "s3 server (moto; only `generate` uses the API's S3 client, and presigning makes no request)": f"core {stack.aux_core}",
            },
            "uvicorn_workers": workers,
            "concurrency": CONCURRENCY,
            "log_level": "WARNING (no access log line per request: logging costs API CPU; production logs at INFO)",
            "db_pool": "DB_POOL_SIZE 10 + DB_MAX_OVERFLOW 0 per worker (the defaults); closed connections refused at checkout (no pre-ping round trips)",
            "feed_cache": f"FEED_CACHE_ENTRIES {apistack.FEED_ENTRIES} and FEED_CACHE_MEMBER_BYTES "
            f"{apistack.MEMBER_BYTES:,} (the defaults) on the API; a second API with FEED_CACHE_ENTRIES=0 "
            "(no parts kept: every page from the database, as right after a write) serves the *_uncached "
            "scenarios and the growth measurements; both on the same core, one idle while the other is loaded",
            "postgresql": f"{postgres_version(stack)}, embedded (pgserver), fsync off, synchronous_commit off, default shared_buffers",
            "load_generator": f"{wrk_version}, closed loop, keep-alive connections",
            "members": apistack.USERS,
            "posts": "post i belongs to member i % 1000; one post in five is private; 98% are uploaded/ready "
            "(visible), 1% pending, 1% rejected; created one second apart",
            "load_dataset_posts": load_size,
            "seconds_per_run": seconds,
            "rounds": rounds,
        }
        plan = sorted((set(sizes) if "growth" in sections else set()) | {load_size})
        for size in plan:
            progress(f"seeding {size:,} posts straight into PostgreSQL (INSERT ... SELECT generate_series)")
            took = stack.seed_posts(size)
            counts = stack.count_visible()
            progress(f"  {counts} in {took} s; load average {loadavg()}")
            if size in sizes and "growth" in sections:
                progress(f"growth at {size:,} posts: one client, {rounds} x {seconds / 2:.0f} s per feed")
                # The cache off: the growth target is about the query, which every page after a write runs.
                point = growth_point(
                    stack, uncached, seconds=max(3, seconds / 2), rounds=max(rounds, GROWTH_ROUNDS)
                )
                growth[str(size)] = {"dataset": counts, "load_average": loadavg(), **point}
                progress(
                    f"  p50 anonymous {point['feed_anonymous']['p50_ms']} ms, "
                    f"logged-in {point['feed_logged_in']['p50_ms']} ms"
                )
            if size == load_size and "load" in sections:
                progress(
                    f"load at {size:,} posts: {CONCURRENCY} clients, {rounds} rounds x {seconds:.0f} s each"
                )
                before = loadavg()
                suite = load_suite(stack, api, ceiling, uncached, rounds=rounds, seconds=seconds)
                results["load"] = {
                    "dataset": counts,
                    "load_average_before": before,
                    "load_average_after": loadavg(),
                    **suite,
                }
                progress(
                    f"/health while the feeds run at half their capacity: {rounds} x {fixed_seconds:.0f} s"
                )
                results["health_under_load"] = health_under_fixed_load(
                    stack,
                    api,
                    anonymous_max_rps=float(suite["feed_anonymous"]["rps"]),
                    logged_in_max_rps=float(suite["feed_logged_in"]["rps"]),
                    seconds=fixed_seconds,
                    rounds=rounds,
                )
            if size == load_size and "writes" in sections:
                progress(
                    f"the feed mixes while posts change: head pages at {', '.join(f'{r:g}' for r in HEAD_RATES)} "
                    f"commits/s, spread pages at {', '.join(f'{r:g}' for r in SPREAD_RATES)}; "
                    f"{rounds} rounds x {seconds:.0f} s each, with the ceiling"
                )
                results["feeds_under_writes"] = feeds_under_writes(
                    stack, api, ceiling, seconds=seconds, rounds=rounds
                )
            if size == load_size and "memory" in sections:
                progress(f"cache memory: {ACTIVE_MEMBERS:,} members read their head page, twice over")
                results["cache_memory"] = cache_memory(stack)
                progress(
                    f"  worker RSS {results['cache_memory']['rss_before_mib']} -> "
                    f"{results['cache_memory']['rss_after_mib']} MiB"
                )
        results["growth"] = growth
        if growth:
            first, last = str(min(sizes)), str(max(sizes))
            results["growth_ratio"] = {
                feed: round(growth[last][feed]["p50_ms"] / growth[first][feed]["p50_ms"], 3)
                for feed in ("feed_anonymous", "feed_logged_in")
            }
            results["growth_ratio_sizes"] = [int(first), int(last)]
        results["conditions"] = conditions
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default=",".join(str(s) for s in GROWTH_SIZES))
    parser.add_argument("--load-size", type=int, default=LOAD_SIZE)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help="comma-separated: " + ",".join(SECTIONS)
    )
    args = parser.parse_args()
    out = run(
        seconds=args.seconds,
        rounds=args.rounds,
        sizes=tuple(int(s) for s in args.sizes.split(",") if s),
        load_size=args.load_size,
        workers=args.workers,
        sections=tuple(s for s in args.sections.split(",") if s),
    )
    text = json.dumps(out, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
