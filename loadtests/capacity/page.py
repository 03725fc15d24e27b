"""The capacity page: one self-contained HTML file (inline CSS, charts as embedded PNGs, no script).

It answers, top to bottom: did every gate hold, and did anything regress against the baseline; what one
task carries and what prod needs; what that costs and which values go into stages/config.py; did the
service scale out and how fast; then this run beside its baseline, the charts, every threshold's
verdict, every request group, the minutes, and what data was missing.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a display

from matplotlib import pyplot as plt

from loadtests.capacity import config
from loadtests.capacity.analysis import Minute, Review

CHARTS = ("users", "rps", "latency", "tasks", "acu")
DASH, TIMES, DIVIDE = "\u2013", "\u00d7", "\u00f7"  # written as escapes: ruff flags look-alike characters

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1.5rem;color:#1d2327;line-height:1.45}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dcdcde}
.banner{padding:.8rem 1rem;border-radius:6px;font-weight:600;font-size:1.1rem}
.ok{background:#e7f6ec;color:#0a5c2b}.bad{background:#fbeaea;color:#8a1f11}.warn{background:#fcf9e8;color:#6b4e00}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:.8rem;margin-top:1rem}
.card{border:1px solid #dcdcde;border-radius:6px;padding:.8rem}.card .v{font-size:1.5rem;font-weight:700}
.card .k{font-size:.85rem;color:#50575e}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.5rem 0}
th,td{border-bottom:1px solid #eee;padding:.3rem .45rem;text-align:right}th{background:#f6f7f7}
td:first-child,th:first-child{text-align:left}tr.fail td{background:#fbeaea}tr.nodata td{color:#787c82}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85rem;color:#50575e}
figure.missing{border:1px dashed #c3c4c7;padding:1rem;color:#50575e}
pre{background:#f6f7f7;padding:.8rem;overflow-x:auto}dt{font-weight:600;margin-top:.5rem}
.muted{color:#50575e;font-size:.9rem}
#thresholds td,#thresholds th{text-align:left}#thresholds td:nth-child(2){white-space:nowrap}
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return DASH
    return f"{value:,.{digits}f}{unit}"


# --- charts ---------------------------------------------------------------------------------------
def _png(
    draw: Callable[[Any], None],
    xlabel: str = "minutes since the start of the run",
    size: tuple[float, float] = (9, 3.2),
) -> str:
    figure, axes = plt.subplots(figsize=size, dpi=100)
    try:
        draw(axes)
        axes.grid(alpha=0.3)
        axes.set_xlabel(xlabel)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _x(review: Review, minute: Minute) -> float:
    return (minute.minute + 30 - review.run.started) / 60


def _series(review: Review, attr: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for m in review.minutes:
        value = getattr(m, attr)
        if value is not None:
            xs.append(_x(review, m))
            ys.append(value * scale)
    return xs, ys


def charts(review: Review) -> dict[str, tuple[str | None, str]]:
    """{chart id: (base64 PNG or None, caption or why it is missing)}."""
    out: dict[str, tuple[str | None, str]] = {}
    run = review.run
    full = [m for m in review.minutes if m.api_requests or m.all_requests]

    if run.users_timeline:

        def users(ax: Any) -> None:
            xs = [(t - run.started) / 60 for t, _ in run.users_timeline]
            ax.step(xs, [u for _, u in run.users_timeline], where="post", color="#2271b1")
            ax.set_ylabel("simulated users")

        out["users"] = (_png(users), "Simulated users over time (Locust).")
    else:
        out["users"] = (None, "No user counts: the run folder has no locust_stats_history.csv.")

    if full:

        def rps(ax: Any) -> None:
            ax.plot(
                [_x(review, m) for m in full], [m.api_rps for m in full], "o-", label="API req/s (Locust)"
            )
            ax.plot(
                [_x(review, m) for m in full], [m.all_rps for m in full], ".--", label="all req/s (Locust)"
            )
            xs, ys = _series(review, "alb_requests", 1 / 60)
            if xs:
                ax.plot(xs, ys, "s-", label="ALB req/s (CloudWatch)")
            ax.set_ylabel("requests per second")
            ax.legend(loc="upper left")

        out["rps"] = (_png(rps), "Requests per second, per minute (partial first and last minutes scaled).")

        def latency(ax: Any) -> None:
            xs, p50 = _series(review, "api_p50_ms")
            ax.plot(xs, p50, "o-", label="API p50 (Locust)")
            xs, p95 = _series(review, "api_p95_ms")
            ax.plot(xs, p95, "o-", label="API p95 (Locust)")
            xs, alb = _series(review, "alb_p95_ms")
            if xs:
                ax.plot(xs, alb, "s--", label="ALB target p95 (CloudWatch)")
            ax.axhline(review.settings.p95_target_ms, color="#d63638", ls=":", label="p95 target")
            ax.set_ylabel("milliseconds")
            ax.legend(loc="upper left")

        out["latency"] = (_png(latency), "p50 and p95 of the API requests completed in each minute.")
    else:
        why = "No per-minute requests: the run folder has no minutes.csv, or the run made no request."
        out["rps"] = (None, why)
        out["latency"] = (None, why)

    xs_tasks, tasks = _series(review, "tasks")
    if xs_tasks and not any(m.tasks_assumed for m in review.minutes):

        def task_chart(ax: Any) -> None:
            ax.step(xs_tasks, tasks, where="mid", color="#2271b1", label="running tasks")
            ax.set_ylabel("running tasks")
            ax.set_ylim(bottom=0, top=max(tasks) + 1)
            xs, cpu = _series(review, "cpu")
            if xs:
                twin = ax.twinx()
                twin.plot(xs, cpu, ".--", color="#d63638", label="CPU %")
                twin.axhline(review.settings.cpu_target_percent, color="#d63638", ls=":", alpha=0.5)
                twin.set_ylabel("service CPU %")
                twin.set_ylim(0, 100)

        out["tasks"] = (
            _png(task_chart),
            "ECS running tasks (maximum per minute) and service CPU (dotted: scaling target).",
        )
    else:
        out["tasks"] = (None, "No ECS task count or CPU: CloudWatch was not read (see “Data”).")

    xs_acu, acu = _series(review, "acu")
    if xs_acu:

        def acu_chart(ax: Any) -> None:
            ax.plot(xs_acu, acu, "o-", color="#8c5e00", label="ACUs")
            ax.set_ylabel("Aurora ACUs")
            ax.set_ylim(bottom=0)
            xs, conns = _series(review, "db_connections")
            if xs:
                twin = ax.twinx()
                twin.plot(xs, conns, ".--", color="#50575e")
                twin.set_ylabel("DB connections")

        out["acu"] = (_png(acu_chart), "Aurora Serverless v2 capacity (ACUs) and database connections.")
    else:
        out["acu"] = (None, "No Aurora ACUs: CloudWatch was not read (see “Data”).")
    return out


def regression_charts(data: dict[str, Any]) -> dict[str, tuple[str | None, str]]:
    """Side-by-side charts of this run and its baseline, from regression.json's `charts`."""
    out: dict[str, tuple[str | None, str]] = {}
    base_id = (data.get("baseline") or {}).get("run_id", "baseline")
    run_id = data["run"]["run_id"]
    windows = data.get("charts", {}).get("windows", {})
    for metric, ylabel, caption in (
        ("p95_ms", "p95 ms (10-second windows)", "p95 of every request, per 10-second window"),
        ("rps", "requests per second", "Requests per second, per 10-second window"),
    ):
        series = windows.get(metric, {})
        if not series.get("baseline") or not series.get("run"):
            out[f"vs-{metric}"] = (None, f"{caption}: no windows in one of the runs.")
            continue

        def draw(ax: Any, series: dict[str, Any] = series, ylabel: str = ylabel) -> None:
            for name, style, label in (
                ("baseline", "s--", f"baseline {base_id}"),
                ("run", "o-", f"this run {run_id}"),
            ):
                points = series[name]
                ax.plot([e / 60 for e, _ in points], [v for _, v in points], style, label=label)
            ax.set_ylabel(ylabel)
            ax.set_ylim(bottom=0)
            ax.legend(loc="upper left")

        out[f"vs-{metric}"] = (_png(draw), f"{caption}: the baseline and this run, side by side.")
    groups = data.get("charts", {}).get("groups", {}).get("p95_ms", {})
    names = sorted(
        n
        for n in set(groups.get("baseline", {})) & set(groups.get("run", {}))
        if groups["baseline"][n] > 0 and groups["run"][n] > 0
    )
    if names:

        def bars(ax: Any) -> None:
            rows = range(len(names))
            ax.barh(
                [r + 0.2 for r in rows],
                [groups["baseline"][n] for n in names],
                0.4,
                label=f"baseline {base_id}",
            )
            ax.barh(
                [r - 0.2 for r in rows], [groups["run"][n] for n in names], 0.4, label=f"this run {run_id}"
            )
            ax.set_xscale("log")  # one slow flow (time to rendition) must not flatten every other bar
            ax.set_yticks(list(rows), names, fontsize=8)
            ax.invert_yaxis()
            ax.legend(loc="lower right")

        out["vs-groups"] = (
            _png(bars, xlabel="p95 ms of the whole run", size=(9, 0.35 * len(names) + 1.2)),
            "p95 of each request group over the whole run: the baseline and this run.",
        )
    else:
        out["vs-groups"] = (None, "No request group is in both runs.")
    return out


# --- sections -------------------------------------------------------------------------------------
def _banner(review: Review) -> str:
    verdicts = review.verdicts
    failed = [v for v in verdicts if v.get("status") == "fail"]
    problem = review.summary.get("problem")
    if problem:
        return f'<p class="banner bad" id="verdict">The run itself failed: {esc(problem)}</p>'
    if failed:
        return (
            f'<p class="banner bad" id="verdict">{len(failed)} of {len(verdicts)} gates were missed: '
            f"{esc('; '.join(v['label'] for v in failed))}</p>"
        )
    return f'<p class="banner ok" id="verdict">Every gate held ({len(verdicts)} thresholds of profile {esc(review.summary.get("profile"))}).</p>'


def _regression_banner(data: dict[str, Any] | None) -> str:
    if data is None:
        return '<p class="banner warn" id="regression">Regression gate: this run was not compared with a baseline.</p>'
    if data.get("error"):
        return f'<p class="banner bad" id="regression">Regression gate: could not compare: {esc(data["error"])}</p>'
    css = "ok" if data["passed"] and data["comparable"] else "bad" if not data["passed"] else "warn"
    regressed = [v["label"] for v in data["verdicts"] if v["verdict"] == "regressed"]
    detail = f": {esc('; '.join(regressed))}" if regressed else ""
    return f'<p class="banner {css}" id="regression">Regression gate: {esc(data["headline"])}{detail}</p>'


def _figures(made: dict[str, tuple[str | None, str]]) -> list[str]:
    """One <figure> per chart id: the PNG inline with its caption, or the caption alone when it is missing."""
    figures = []
    for chart_id, (png, caption) in made.items():
        if png:
            figures.append(
                f'<figure id="chart-{chart_id}"><img alt="{esc(caption)}" src="data:image/png;base64,{png}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
        else:
            figures.append(f'<figure id="chart-{chart_id}" class="missing"><p>{esc(caption)}</p></figure>')
    return figures


def _regression(data: dict[str, Any] | None) -> str:
    if data is None or data.get("error") or not data.get("comparable"):
        why = "" if data is None else data.get("error") or data.get("reason", "")
        return f'<p id="vs-baseline">Not compared{": " + esc(why) if why else ""}.</p>'
    base = data["baseline"]
    figures = _figures(regression_charts(data))
    order = {"regressed": 0, "improved": 1, "same": 2}
    judged = sorted((v for v in data["verdicts"] if v["verdict"] in order), key=lambda v: order[v["verdict"]])
    unjudged = [v for v in data["verdicts"] if v["verdict"] not in order]

    def rows(verdicts: list[dict[str, Any]]) -> str:
        return "".join(
            f'<tr class="{"fail" if v["verdict"] == "regressed" else ""}"><td>{esc(v["label"])}</td>'
            f"<td>{esc(v['verdict'])}</td><td>{esc(v['explanation'])}</td></tr>"
            for v in verdicts
        )

    head = "<tr><th>metric</th><th>verdict</th><th>baseline -> this run, and what a change had to exceed</th></tr>"
    return (
        f'<div id="vs-baseline"><p>Baseline: run {esc(base["run_id"])} of {esc(base.get("started_at"))} against '
        f"{esc(base.get('host'))}; the spread between runs from {len(data.get('history', []))} accepted run(s) "
        f"({esc(', '.join(data.get('history', [])))}). A change counts only when it exceeds both its relative "
        "bound (15% for latencies, 10% for throughput, 0.5 points of failures, 15% per request) and the noise "
        "the runs show (3 standard errors from each run's windows, the sampling interval of a percentile, and "
        "the range over the accepted runs).</p>"
        f"{''.join(figures)}"
        f'<table id="regression-verdicts">{head}{rows(judged)}</table>'
        f"<details><summary>{len(unjudged)} metric(s) not judged (too few requests or windows)</summary>"
        f"<table>{head}{rows(unjudged)}</table></details></div>"
    )


def _cards(review: Review) -> str:
    s, top, so = review.settings, review.headline, review.scale_out
    cards = []
    if top:
        cards.append(
            (
                f"requests/s per task at p95 ≤ {s.p95_target_ms:.0f} ms",
                fmt(top.requests_per_task, 1),
                f"minute +{top.best.offset_min:.0f}: {top.best.api_rps:.1f} req/s on {top.best.tasks:.0f} task(s)"
                + (" (assumed)" if top.best.tasks_assumed else ""),
            )
        )
        cards.append(
            (
                f"prod tasks for {s.target_rps:.0f} req/s (+{s.headroom:.0%})",
                str(top.tasks_needed_target),
                f"{s.prod_task.cpu_units} CPU units each; {top.tasks_needed_peak} for {s.peak_factor:.0f}{TIMES} that",
            )
        )
    else:
        cards.append(("requests/s per task", "not computed", review.headline_missing))
    cards.append(("scale-out", "yes" if so.happened else ("unknown" if not so.known else "no"), so.verdict))
    rec = review.recommendation
    if rec:
        base, ceil = rec.monthly_usd["baseline"], rec.monthly_usd["ceiling"]
        cards.append(
            (
                "monthly cost (web tasks + Aurora)",
                f"${base['total']:,.0f}{DASH}${ceil['total']:,.0f}",
                f"list prices of {config.PRICES_AS_OF}, {config.PRICE_REGION}",
            )
        )
    return (
        '<div class="cards" id="headline">'
        + "".join(
            f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div><div class="k">{esc(d)}</div></div>'
            for k, v, d in cards
        )
        + "</div>"
    )


def _recommendation(review: Review) -> str:
    rec, s = review.recommendation, review.settings
    if rec is None:
        return f'<p class="warn banner" id="recommendation">No recommendation: {esc(review.headline_missing)}.</p>'
    lines = [f"    min_tasks={rec.min_tasks},", f"    max_tasks={rec.max_tasks},"]
    if rec.aurora_min_acu is not None:
        lines += [
            f"    aurora_min_acu={rec.aurora_min_acu:g},",
            f"    aurora_max_acu={rec.aurora_max_acu:g},",
        ]
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{col['tasks']:.0f}</td><td>${col['fargate']:,.2f}</td>"
        f"<td>{fmt(col.get('acu'), 1)}</td><td>{'$' + format(col['aurora'], ',.2f') if 'aurora' in col else DASH}</td>"
        f"<td><b>${col['total']:,.2f}</b></td></tr>"
        for name, col in (
            ("baseline (min)", rec.monthly_usd["baseline"]),
            ("ceiling (max)", rec.monthly_usd["ceiling"]),
        )
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in rec.notes)
    return (
        '<div id="recommendation"><p>Values for <code>PROD</code> in <code>stages/config.py</code>:</p>'
        f"<pre>{esc(chr(10).join(lines))}</pre>"
        "<table><tr><th>per month</th><th>web tasks</th><th>Fargate</th><th>ACU per instance</th>"
        f"<th>Aurora ({s.prod_aurora_instances} instances)</th><th>total</th></tr>{rows}</table>"
        f'<p class="muted">Fargate ARM64 ${config.FARGATE_ARM_VCPU_HOUR_USD}/vCPU-hour and '
        f"${config.FARGATE_ARM_GB_HOUR_USD}/GB-hour, Aurora Serverless v2 "
        f"${config.AURORA_SERVERLESS_V2_ACU_HOUR_USD}/ACU-hour ({config.PRICE_REGION}, list prices of "
        f"{config.PRICES_AS_OF}; {config.HOURS_PER_MONTH} hours a month). Not included: storage, I/O, load "
        "balancer, NAT, CloudFront, the event worker, data transfer.</p>"
        f"<ul>{notes}</ul></div>"
    )


def _definitions(review: Review) -> str:
    s = review.settings
    return f"""<dl id="definitions">
<dt>Minute</dt><dd>A wall-clock minute (CloudWatch's one-minute period) that lies wholly inside the run;
partial first and last minutes are charted but never count.</dd>
<dt>API rate and p95 of a minute</dt><dd>The <code>/api/v1</code> requests Locust completed in that minute,
divided by 60, and the exact 95th percentile of their response times (minutes.csv).</dd>
<dt>A minute met the target</dt><dd>Its p95 ≤ {s.p95_target_ms:.0f} ms (the staging gate of
<code>/feed/latest</code>), at most {s.max_failure_ratio:.0%} of its API requests failed, and the running task
count is known.</dd>
<dt>Requests per task</dt><dd>The best one-minute API rate divided by the running task count (CloudWatch's
maximum in that minute), over the minutes that met the target; measured on {s.measured_task.cpu_units} CPU-unit tasks.</dd>
<dt>Tasks needed</dt><dd>ceil(T {TIMES} (1 + {s.headroom:.0%} headroom) {DIVIDE} requests per task), for the target traffic
T = {s.target_rps:.0f} req/s (min_tasks, at least {config.PROD_MIN_TASKS_FLOOR}: one per availability zone) and
{s.peak_factor:.0f}{TIMES}T (max_tasks). For {s.prod_task.cpu_units} CPU-unit prod tasks, requests per task are scaled by CPU.</dd>
<dt>Aurora ACUs</dt><dd>A straight line from the ACUs of the quietest minute to those of the busiest, read
at T (aurora_min_acu) and at {s.peak_factor:.0f}{TIMES}T plus headroom (aurora_max_acu), rounded up to 0.5.</dd>
<dt>Scale-out</dt><dd>The running task count rose above its first value. Its reaction time is counted from
the first minute in which a scaling target was crossed (CPU {s.cpu_target_percent:.0f}% or
{s.requests_per_target:.0f} ALB requests per task per minute) to the first minute with a new task.</dd>
</dl>"""


def _scale_out(review: Review) -> str:
    so = review.scale_out
    css = "ok" if so.happened else ("warn" if not so.known or so.trigger_min is None else "bad")
    steps = ", ".join(f"+{offset:.0f} min: {tasks:.0f}" for offset, tasks in so.steps) or DASH
    return (
        f'<div id="scale-out"><p class="banner {css}">{esc(so.verdict)}</p>'
        f"<p>Task count over time: {esc(steps)}. Aurora: {fmt(so.acu_min)} to {fmt(so.acu_max)} ACUs"
        f"{' (it scaled)' if so.acu_min is not None and so.acu_max is not None and so.acu_max > so.acu_min else ''}.</p></div>"
    )


def _thresholds(review: Review) -> str:
    rows = []
    for v in review.verdicts:
        css = {"fail": "fail", "no data": "nodata"}.get(v.get("status", ""), "")
        observed = DASH if v.get("observed") is None else f"{v['observed']:.4g}"
        rows.append(
            f'<tr class="{css}"><td>{esc(v["group"])}</td><td>{esc(v["metric"])} {esc(v["op"])} {v["limit"]:g}</td>'
            f"<td>{esc(observed)}</td><td>{esc(v.get('status', ''))}</td><td>{esc(v.get('explanation', ''))}</td></tr>"
        )
    return (
        '<table id="thresholds"><tr><th>group</th><th>threshold</th><th>observed</th><th>verdict</th>'
        f"<th>detail</th></tr>{''.join(rows)}</table>"
    )


def _groups(review: Review) -> str:
    rows = []
    groups = list(review.summary.get("groups", []))
    if review.summary.get("aggregated"):
        groups.append(review.summary["aggregated"])
    for g in groups:
        rows.append(
            f"<tr><td>{esc((g.get('method') or '') + ' ' + g['name'])}</td><td>{g['requests']:,}</td>"
            f"<td>{g['failures']:,}</td><td>{g['failure_ratio']:.2%}</td><td>{g['rps']:.2f}</td>"
            f"<td>{g['median_ms']:.0f}</td><td>{g['p95_ms']:.0f}</td><td>{g['p99_ms']:.0f}</td><td>{g['max_ms']:.0f}</td></tr>"
        )
    return (
        '<table id="groups"><tr><th>request group</th><th>requests</th><th>failures</th><th>failure ratio</th>'
        "<th>req/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _minutes(review: Review) -> str:
    rows = []
    for m in review.minutes:
        rows.append(
            f"<tr><td>+{m.offset_min:.0f}{'' if m.full else ' (partial)'}</td><td>{fmt(m.users, 0)}</td>"
            f"<td>{m.api_rps:.2f}</td><td>{fmt(m.api_p95_ms, 0)}</td><td>{m.api_failure_ratio:.2%}</td>"
            f"<td>{fmt(m.tasks, 0)}{' (assumed)' if m.tasks_assumed else ''}</td><td>{fmt(m.cpu, 0)}</td>"
            f"<td>{fmt(m.acu, 1)}</td><td>{fmt(m.rps_per_task, 2)}</td>"
            f"<td>{'yes' if m.met_target else esc(m.why_not)}</td></tr>"
        )
    return (
        '<table id="minutes"><tr><th>minute</th><th>users</th><th>API req/s</th><th>API p95 ms</th>'
        "<th>failed</th><th>tasks</th><th>CPU %</th><th>ACUs</th><th>req/s per task</th><th>met the target</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _data(review: Review) -> str:
    source = (
        "CloudWatch metrics for the run's window were read."
        if review.cloudwatch_used
        else "No CloudWatch data: this page shows what the load generator measured only."
    )
    missing = "".join(f"<li>{esc(item)}</li>" for item in review.missing) or "<li>nothing</li>"
    return f'<div id="data"><p>{esc(source)}</p><p>Missing:</p><ul>{missing}</ul></div>'


def render(review: Review, regression: dict[str, Any] | None = None) -> str:
    """The whole page as one HTML string; `regression` is what regression.json holds (or an `error`)."""
    s = review.summary
    figures = _figures(charts(review))
    title = f"Capacity review of load test {s.get('run_id')}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>{esc(title)}</h1>
<p class="muted">Target {esc(s.get("host"))} · shape {esc(s.get("shape"))} · profile {esc(s.get("profile"))} ·
{esc(s.get("started_at"))} to {esc(s.get("finished_at"))} ({fmt(s.get("duration_s"), 0)} s, up to
{esc(s.get("peak_users"))} users)</p>
{_banner(review)}
{_regression_banner(regression)}
{_cards(review)}
<h2>Recommended capacity</h2>
{_recommendation(review)}
<h2>Scale-out</h2>
{_scale_out(review)}
<h2>Against the baseline</h2>
{_regression(regression)}
<h2>Charts</h2>
{"".join(figures)}
<h2>Every threshold</h2>
{_thresholds(review)}
<h2>Request groups</h2>
{_groups(review)}
<h2>Minute by minute</h2>
{_minutes(review)}
<h2>Definitions</h2>
{_definitions(review)}
<h2>Data</h2>
{_data(review)}
</body></html>
"""


def figures_json(review: Review) -> dict[str, Any]:
    """The headline figures for machines (capacity.json)."""
    top, rec, so = review.headline, review.recommendation, review.scale_out
    return json.loads(
        json.dumps(
            {
                "run_id": review.summary.get("run_id"),
                "gates_held": review.gates_held,
                "p95_target_ms": review.settings.p95_target_ms,
                "target_rps": review.settings.target_rps,
                "headroom": review.settings.headroom,
                "requests_per_task": top.requests_per_task if top else None,
                "prod_requests_per_task": top.prod_requests_per_task if top else None,
                "tasks_needed_target": top.tasks_needed_target if top else None,
                "tasks_needed_peak": top.tasks_needed_peak if top else None,
                "headline_missing": review.headline_missing or None,
                "scale_out": {
                    "known": so.known,
                    "happened": so.happened,
                    "initial_tasks": so.initial_tasks,
                    "peak_tasks": so.peak_tasks,
                    "first_increase_min": so.first_increase_min,
                    "reaction_min": so.reaction_min,
                    "verdict": so.verdict,
                },
                "recommendation": None
                if rec is None
                else {
                    "min_tasks": rec.min_tasks,
                    "max_tasks": rec.max_tasks,
                    "aurora_min_acu": rec.aurora_min_acu,
                    "aurora_max_acu": rec.aurora_max_acu,
                    "monthly_usd": rec.monthly_usd,
                },
                "missing": review.missing,
                # Per minute, for the regression gate's per-request figures (loadtests/regression/).
                "measured_task": {
                    "cpu_units": review.settings.measured_task.cpu_units,
                    "memory_mib": review.settings.measured_task.memory_mib,
                },
                "minutes": [
                    {
                        "minute": m.minute,
                        "seconds": m.seconds,
                        "full": m.full,
                        "users": m.users,
                        "api_requests": m.api_requests,
                        "api_failures": m.api_failures,
                        "tasks": m.tasks,
                        "tasks_assumed": m.tasks_assumed,
                        "cpu": m.cpu,
                        "acu": m.acu,
                        "alb_requests": m.alb_requests,
                    }
                    for m in review.minutes
                ],
            }
        )
    )
