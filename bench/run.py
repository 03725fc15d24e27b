"""`make bench`: the API, the compressor and the build, measured and held to their targets.

    python bench/run.py [--only api,compressor,build] [--quick] [--out bench/results]

Writes ``latest.json`` (every figure with its conditions) and ``latest.md`` (the tables) into ``--out``.
Takes several minutes (about 12 on a 2-core machine); progress goes to stdout. Not part of `make test`.
Exit status: 0 when it measured everything (targets missed are reported, not failures), 1 when a part
could not be measured.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

TARGETS = {
    "feed_fraction_of_ceiling": 0.35,
    "feed_uncached_fraction_of_ceiling": 0.15,
    "feed_head_100_fraction_of_ceiling": 0.5,  # the head-page mix while 100 visible commits/s land
    "feed_head_100_p99_ms": 20.0,
    "feed_spread_100_fraction_of_ceiling": 0.7,  # cursor and by_user pages, writes to older posts
    "feed_head_1000_fraction_of_ceiling": 0.2,  # a burst of 1,000 visible commits/s
    "health_p99_ms_under_half_load": 20.0,
    "feed_growth_ratio": 1.3,
    "compressor_vs_bound": 1.1,  # end to end / (draft decode + encoder alone)
    "compressor_peak_mb_50mp": 300.0,
    "cdk_synth_median_s": 25.0,
    "infra_tests_s": 60.0,
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_requirements() -> None:
    """Install bench/requirements.txt into this interpreter's environment when something is missing."""
    missing = [name for name in ("numpy", "pyinstrument") if importlib.util.find_spec(name) is None]
    if not (Path(sys.executable).parent / "py-spy").exists():
        missing.append("py-spy")
    if missing:
        log(f"installing bench/requirements.txt (missing: {', '.join(missing)})")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "-r", str(BENCH / "requirements.txt")],
            check=True,
        )


def machine() -> dict[str, Any]:
    def version(argv: list[str]) -> str:
        try:
            return (
                subprocess.run(argv, capture_output=True, text=True, check=False)
                .stdout.strip()
                .splitlines()[0]
            )
        except (OSError, IndexError):
            return "unknown"

    return {
        "cores": os.cpu_count(),
        "cpu": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        ),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "taskset": version(["taskset", "--version"]) if shutil.which("taskset") else "missing",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "note": "The machine may be shared with other work: every figure is a median of interleaved rounds, "
        "and ratios are taken within one round; see the load averages recorded with each section",
    }


# --- verdicts ------------------------------------------------------------------------------------
def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, measured: object, target: str, met: bool | None, note: str = "") -> None:
        out.append({"target": name, "measured": measured, "goal": target, "met": met, "note": note})

    api = results.get("api")
    if isinstance(api, dict) and "load" in api:
        load = api["load"]
        for feed in ("feed_anonymous", "feed_logged_in"):
            fraction = load[feed]["fraction_of_ceiling"]
            add(
                f"{feed.replace('_', ' ')} throughput / ceiling",
                f"{fraction:.1%} ({load[feed]['rps']:.0f} / {load['ceiling']['rps']:.0f} req/s)",
                f">= {TARGETS['feed_fraction_of_ceiling']:.0%}",
                fraction >= TARGETS["feed_fraction_of_ceiling"],
                "feed cache on (correct under writes), nothing changing",
            )
        for feed in ("feed_anonymous", "feed_logged_in"):
            uncached = load[f"{feed}_uncached"]
            fraction = uncached["fraction_of_ceiling"]
            add(
                f"{feed.replace('_', ' ')} page uncached / ceiling",
                f"{fraction:.1%} ({uncached['rps']:.0f} req/s; API {uncached['api_cpu_ms_per_request']} + "
                f"DB {uncached['db_cpu_ms_per_request']} ms CPU per page)",
                f">= {TARGETS['feed_uncached_fraction_of_ceiling']:.0%}",
                fraction >= TARGETS["feed_uncached_fraction_of_ceiling"],
                "FEED_CACHE_ENTRIES=0: every page from the database, as right after a write",
            )
    writes = api.get("feeds_under_writes") if isinstance(api, dict) else None
    if writes:
        for mix, rate, goal in (("head", "100", "feed_head_100"), ("spread", "100", "feed_spread_100")):
            row = writes[mix][rate]
            fraction = row["fraction_of_ceiling"]
            p99_goal = TARGETS.get(f"{goal}_p99_ms")
            add(
                f"{mix} feed mix at {rate} visible commits/s / ceiling"
                + (", and its p99" if p99_goal else ""),
                f"{fraction:.1%} ({row['rps']:.0f} req/s, {row['writes_per_s']} commits/s), p99 {row['p99_ms']} ms",
                f">= {TARGETS[f'{goal}_fraction_of_ceiling']:.0%}"
                + (f", p99 <= {p99_goal:.0f} ms" if p99_goal else ""),
                fraction >= TARGETS[f"{goal}_fraction_of_ceiling"]
                and (p99_goal is None or row["p99_ms"] <= p99_goal),
                "rounds: " + ", ".join(f"{r:.0%}" for r in row["fraction_of_ceiling_per_round"]),
            )
        burst = writes["head"]["1000"]
        add(
            "head feed mix at 1,000 visible commits/s (a burst) / ceiling",
            f"{burst['fraction_of_ceiling']:.1%} ({burst['rps']:.0f} req/s, {burst['writes_per_s']} commits/s), "
            f"p99 {burst['p99_ms']} ms",
            f">= {TARGETS['feed_head_1000_fraction_of_ceiling']:.0%}",
            burst["fraction_of_ceiling"] >= TARGETS["feed_head_1000_fraction_of_ceiling"],
            "rounds: " + ", ".join(f"{r:.0%}" for r in burst["fraction_of_ceiling_per_round"]),
        )
    memory = api.get("cache_memory") if isinstance(api, dict) else None
    if memory:
        add(
            f"feed cache memory per worker at {memory['members']:,} active members",
            f"+{memory['rss_growth_mib']} MiB RSS ({memory['rss_before_mib']} -> {memory['rss_after_mib']} MiB)",
            f"report; members' parts bounded by FEED_CACHE_MEMBER_BYTES ({memory['member_bytes_budget_mib']} MiB)",
            memory["rss_growth_mib"] <= memory["member_bytes_budget_mib"]
            and memory["small_budget"]["rss_growth_mib"] < memory["rss_growth_mib"],
            f"{memory['requests']:,} requests, each member's head page at least twice; with a "
            f"{memory['small_budget']['member_bytes_budget_mib']} MiB budget: "
            f"+{memory['small_budget']['rss_growth_mib']} MiB",
        )
    if isinstance(api, dict) and "health_under_load" in api:
        health = api["health_under_load"]
        add(
            "/health p99 while the feeds run at half their capacity",
            f"{health['health_p99_ms']} ms (feeds at {health['feed_rps']:.0f} req/s)",
            f"<= {TARGETS['health_p99_ms_under_half_load']:.0f} ms",
            health["health_p99_ms"] <= TARGETS["health_p99_ms_under_half_load"],
        )
    if isinstance(api, dict) and api.get("growth_ratio"):
        small, large = api["growth_ratio_sizes"]
        for feed, ratio in api["growth_ratio"].items():
            add(
                f"{feed.replace('_', ' ')} p50 at {large:,} / at {small:,} posts",
                f"{ratio}x",
                f"<= {TARGETS['feed_growth_ratio']}x",
                ratio <= TARGETS["feed_growth_ratio"],
                "feed cache off: every page from the database",
            )
    comp = results.get("compressor")
    if isinstance(comp, dict) and "jpeg_12mp" in comp:
        j12 = comp["jpeg_12mp"]
        add(
            "compressor end to end / its bound (draft decode + encoder alone), 12 MP JPEG",
            f"{j12['vs_bound']}x ({j12['optimized_ms']} vs {j12['bound_ms']} ms)",
            f"<= {TARGETS['compressor_vs_bound']}x",
            j12["vs_bound"] <= TARGETS["compressor_vs_bound"],
            "round by round {min}-{max}x; ".format(**j12["vs_bound_by_round"])
            + f"vs the naive path {j12['speedup']}x (at most {j12['speedup_bound']}x); "
            f"rendition {j12['rendition_bytes']} bytes",
        )
        peak = comp["jpeg_50mp"]["optimized"]["peak_rss_mb"]
        add(
            "compressor peak memory, 50 MP JPEG",
            f"{peak} MB",
            f"< {TARGETS['compressor_peak_mb_50mp']:.0f} MB",
            peak < TARGETS["compressor_peak_mb_50mp"],
        )
    build = results.get("build")
    if isinstance(build, dict):
        synth = build.get("cdk_synth", {})
        if "median_s" in synth:
            failed = (
                ""
                if synth.get("exit_ok", True)
                else "synth exited non-zero (a cdk-nag/synth error; see build.cdk_synth.failure): timed all the same"
            )
            add(
                f"cdk synth of the whole app, median of {len(synth['runs_s'])}",
                f"{synth['median_s']} s",
                f"<= {TARGETS['cdk_synth_median_s']:.0f} s",
                synth["median_s"] <= TARGETS["cdk_synth_median_s"],
                failed,
            )
        tests = build.get("infra_tests", {})
        if "seconds" in tests:
            add(
                "infrastructure tests (pytest tests -q)",
                f"{tests['seconds']} s ({tests['summary']})",
                f"< {TARGETS['infra_tests_s']:.0f} s",
                tests["seconds"] < TARGETS["infra_tests_s"] and tests["exit_code"] == 0,
            )
    return out


# --- markdown ----------------------------------------------------------------------------------
def _mark(met: Any) -> str:
    return {True: "met", False: "**missed**", None: "n/a"}[met]


def api_markdown(api: dict) -> list[str]:
    cond = api["conditions"]
    lines = ["## API under load", ""]
    if "load" in api:
        load = api["load"]
        lines += [
            f"Dataset: {load['dataset']['rows']:,} posts ({load['dataset']['visible']:,} visible, "
            f"{load['dataset']['public']:,} public), {cond['members']:,} members. {cond['concurrency']} concurrent "
            f"clients (closed loop), {cond['rounds']} interleaved rounds of {cond['seconds_per_run']:.0f} s "
            f"(login: at least 15 s); medians. Load average before / after: {load['load_average_before']} / "
            f"{load['load_average_after']}.",
            "",
            "| scenario | req/s | p50 ms | p95 ms | p99 ms | API CPU ms/req | DB CPU ms/req | generator core busy | failed | vs ceiling |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, row in load.items():
            if not isinstance(row, dict) or "rps" not in row:
                continue
            fraction = f"{row['fraction_of_ceiling']:.1%}" if "fraction_of_ceiling" in row else ""
            lines.append(
                f"| {name} | {row['rps']:.1f} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
                f"{row['api_cpu_ms_per_request']} | {row['db_cpu_ms_per_request']} | "
                f"{row['generator_core_busy_max']:.0%} | {row['failed_requests']} | {fraction} |"
            )
        lines += ["", "What each scenario is:", ""]
        lines += [
            f"- `{name}`: {row['what']}"
            for name, row in load.items()
            if isinstance(row, dict) and "what" in row
        ]
    health = api.get("health_under_load")
    if health:
        lines += [
            "",
            "### /health while the feeds run at a fixed rate",
            "",
            f"Feeds (half anonymous, half logged-in) paced at {health['feed_rate_target_rps']} req/s, half the "
            f"mix's measured capacity ({health['feed_mix_capacity_rps']} req/s, harmonic mean of the two maxima), "
            f"{cond['concurrency']} connections; /health probed at {health['health_probe_rate_rps']:.0f} req/s on "
            f"{health['health_connections']} more connections by a second wrk; {len(health['rounds'])} rounds of "
            f"{health['seconds']:.0f} s, medians.",
            "",
            "| | achieved req/s | p50 ms | p99 ms |",
            "|---|---|---|---|",
            f"| feeds | {health['feed_rps']} | {health['feed_p50_ms']} | {health['feed_p99_ms']} |",
            f"| /health | {health['health_rps']} | {health['health_p50_ms']} | {health['health_p99_ms']} "
            f"(rounds: {health['health_p99_ms_per_round']}) |",
        ]
    writes = api.get("feeds_under_writes")
    if writes:
        lines += [
            "",
            "### The feeds while posts change",
            "",
            f"Two feed mixes ({cond['concurrency']} connections, closed loop) on the API with the feed cache, while "
            f"a separate process commits feed-visible changes at a fixed rate ({api_bench_writer_note()}):",
            "",
            "- `head`: the head page of `latest`, half anonymous, half logged in (16 members), while the 20 "
            "newest public posts change: every change lands in the window of the pages read;",
            "- `spread`: head, cursor (2nd and 3rd page) and `by_user` pages (a member's own, another's, "
            "anonymous and logged in; one request in six is a head page), while older posts change, public "
            "and private (1,000 posts at least 10 minutes old).",
            "",
            "The ceiling runs in every round; each fraction is taken against its own round's ceiling (median "
            f"{writes['ceiling_rps']:.0f} req/s). Medians of {cond['rounds']} rounds.",
            "",
            "| mix | commits/s (target / achieved) | feed req/s | vs ceiling | p50 ms | p99 ms | API CPU ms/req | DB CPU ms/req | failed |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for mix in ("head", "spread"):
            for rate, row in writes.get(mix, {}).items():
                lines.append(
                    f"| {mix} | {rate} / {row.get('writes_per_s', 0)} | {row['rps']:.0f} | "
                    f"{row['fraction_of_ceiling']:.1%} | {row['p50_ms']} | {row['p99_ms']} | "
                    f"{row['api_cpu_ms_per_request']} | {row['db_cpu_ms_per_request']} | {row['failed_requests']} |"
                )
    memory = api.get("cache_memory")
    if memory:
        lines += [
            "",
            "### Feed cache memory",
            "",
            f"{memory['members']:,} members (their tokens made by the app's function) each read their head page "
            f"at least twice ({memory['requests']:,} requests) on a fresh API worker (default settings; it had "
            f"served the head page anonymously and to one member): resident memory {memory['rss_before_mib']} "
            f"-> {memory['rss_after_mib']} MiB "
            f"(+{memory['rss_growth_mib']} MiB). Members' parts are bounded by FEED_CACHE_MEMBER_BYTES "
            f"({memory['member_bytes_budget_mib']} MiB), shared parts by FEED_CACHE_ENTRIES "
            f"({memory['shared_entries']}). The same on a worker with FEED_CACHE_MEMBER_BYTES at "
            f"{memory['small_budget']['member_bytes_budget_mib']} MiB: {memory['small_budget']['rss_before_mib']} "
            f"-> {memory['small_budget']['rss_after_mib']} MiB (+{memory['small_budget']['rss_growth_mib']} MiB). "
            "What else grows with the members: the verified-token cache (4,096 tokens, app/core/security.py).",
        ]
    if api.get("growth"):
        lines += [
            "",
            "## Feed latency as the data grows",
            "",
            "The API with the feed cache off (FEED_CACHE_ENTRIES=0: every page from the database, as after a "
            "write; with the cache on, a repeated page never reaches the database). "
            "One client (no queueing: the p50 is the service time), closed loop; the members stay "
            f"{cond['members']:,}, so each has more posts as the table grows. The p50 is the lowest round p50 "
            "of 5 rounds (outside work on the shared machine only ever adds to it; see api_bench.growth_point); "
            "the median of the rounds is in brackets.",
            "",
            "| posts | visible | anonymous p50 ms | anonymous p99 ms | logged-in p50 ms | logged-in p99 ms | load average |",
            "|---|---|---|---|---|---|---|",
        ]
        for size, point in api["growth"].items():
            anonymous, member = point["feed_anonymous"], point["feed_logged_in"]
            lines.append(
                f"| {int(size):,} | {point['dataset']['visible']:,} | {anonymous['p50_ms']} "
                f"({anonymous.get('p50_ms_median_of_rounds', '')}) | "
                f"{point['feed_anonymous']['p99_ms']} | {member['p50_ms']} ({member.get('p50_ms_median_of_rounds', '')}) | "
                f"{point['feed_logged_in']['p99_ms']} | {point['load_average']} |"
            )
    lines += ["", "### Conditions", ""]
    for key, value in cond.items():
        if isinstance(value, dict):
            lines.append(f"- {key}: " + "; ".join(f"{k}: {v}" for k, v in value.items()))
        else:
            lines.append(f"- {key}: {value}")
    return lines


def api_bench_writer_note() -> str:
    import api_bench

    return (
        f"{api_bench.WRITER_CONNECTIONS} connections, each flipping its own posts between `uploaded` and "
        "`ready` as the event worker moves them: every change shows on the cards that hold the post"
    )


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return next((ln for ln in lines if ln.startswith("ERROR")), lines[-1] if lines else "")[:200]


def build_markdown(build: dict) -> list[str]:
    synth, tests = build.get("cdk_synth", {}), build.get("infra_tests", {})
    lines = ["## Build", "", "| measurement | value | runs / detail |", "|---|---|---|"]
    if "median_s" in synth:
        lines.append(
            f"| `cdk synth` of the whole app (median) | {synth['median_s']} s | {synth['runs_s']} s; "
            f"{synth['templates']} templates; Node {synth['node']}"
            + (
                ""
                if synth.get("exit_ok", True)
                else "; **synth exited non-zero**: " + _first_error(synth["failure"])
            )
            + " |"
        )
    elif "error" in synth:
        lines.append(f"| `cdk synth` | not measured | {synth['error'][:300]} |")
    if "seconds" in tests:
        lines.append(
            f"| infrastructure tests | {tests['seconds']} s | {tests['summary']} (exit {tests['exit_code']}) |"
        )
    lines += [
        "",
        f"Commands: `{synth.get('command', '')}`; `{tests.get('command', '')}`. Load average after: {build.get('load_average')}.",
    ]
    return lines


def markdown(results: dict) -> str:
    info = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Run {results['started']} on {info['cores']} cores ({info['cpu']}), {info['memory_gib']} GiB, "
        f"Python {info['python']}; load average at start {info['load_average_at_start']}. "
        f"{info['note']}. Made by `make bench` (bench/run.py); how to read it: bench/README.md.",
        "",
        "## Targets",
        "",
        "| target | measured | goal | verdict | note |",
        "|---|---|---|---|---|",
    ]
    for v in results["verdicts"]:
        lines.append(f"| {v['target']} | {v['measured']} | {v['goal']} | {_mark(v['met'])} | {v['note']} |")
    if isinstance(results.get("api"), dict):
        lines += ["", *api_markdown(results["api"])]
    if isinstance(results.get("compressor"), dict):
        import compressor_bench

        lines += ["", "## Compressor", "", compressor_bench.markdown(results["compressor"])]
        lines += ["", f"Load average after: {results['compressor'].get('load_average')}."]
    if isinstance(results.get("build"), dict):
        lines += ["", *build_markdown(results["build"])]
    for part, error in results.get("errors", {}).items():
        lines += ["", f"**{part} could not be measured:** `{error.splitlines()[-1] if error else ''}`"]
    readme = (BENCH / "README.md").read_text() if (BENCH / "README.md").exists() else ""
    if "## Changes made from the benchmark" in readme:  # the before/after of the code changes, as measured
        section = readme.split("## Changes made from the benchmark", 1)[1].split("\n## ", 1)[0]
        lines += ["", "## Changes made from the benchmark (from bench/README.md)", "", section.strip()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="api,compressor,build", help="comma-separated parts to run")
    parser.add_argument("--quick", action="store_true", help="short runs and small datasets (a smoke test)")
    parser.add_argument(
        "--api-sections",
        default="growth,load,writes,memory",
        help="comma-separated API sections: growth, load (with /health under load), writes, memory",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so every `with BenchStack()` stops what it started.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    ensure_requirements()
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "targets": TARGETS,
        "quick": args.quick,
    }
    errors: dict[str, str] = {}
    if "compressor" in parts:
        log("compressor: 12 MP timing, 50 MP peak memory, import time, options with their quality")
        try:
            import compressor_bench

            results["compressor"] = compressor_bench.run(
                3 if args.quick else 7, compressor_bench.RenditionOptions().webp_method
            )
        except Exception:
            errors["compressor"] = traceback.format_exc()
            log(errors["compressor"])
    if "build" in parts:
        log("build: cdk synth and the infrastructure tests")
        try:
            import build_bench

            results["build"] = build_bench.run(1 if args.quick else 3)
        except Exception:
            errors["build"] = traceback.format_exc()
            log(errors["build"])
    if "api" in parts:
        log("API: local stack pinned with taskset; this part takes most of the time")
        try:
            import api_bench

            sections = tuple(s for s in args.api_sections.split(",") if s)
            if args.quick:
                results["api"] = api_bench.run(
                    seconds=3,
                    rounds=1,
                    sizes=(10_000, 100_000),
                    load_size=10_000,
                    fixed_seconds=8,
                    sections=sections,
                )
            else:
                results["api"] = api_bench.run(sections=sections)
        except Exception:
            errors["api"] = traceback.format_exc()
            log(errors["api"])
    results["errors"] = errors
    results["verdicts"] = verdicts(results)
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / "latest.json", args.out / "latest.md"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
    tmp.replace(json_path)
    md_path.write_text(markdown(results))
    log(
        f"wrote {json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path} and {md_path.name}"
    )
    for v in results["verdicts"]:
        print(f"  {_mark(v['met']):12s} {v['target']}: {v['measured']} (goal {v['goal']})")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
