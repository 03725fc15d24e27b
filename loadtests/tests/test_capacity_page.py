"""The capacity page: what it shows for the hand-checked run, and that Chromium opens it without errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtests.capacity import page
from loadtests.capacity.analysis import Settings, analyse, load_run
from loadtests.tests.capacity_fixtures import make_run, series


def render(tmp_path: Path, with_cloudwatch: bool = True, **run: Any) -> str:
    data = load_run(make_run(tmp_path / "run", **run))
    missing = (
        [] if with_cloudwatch else ["CloudWatch: not read, because none of the stage's resource names is set"]
    )
    return page.render(analyse(data, series() if with_cloudwatch else {}, Settings(), missing))


def test_the_page_holds_every_chart_every_verdict_and_the_headline(tmp_path: Path) -> None:
    html = render(tmp_path)
    for chart in page.CHARTS:
        assert re.search(
            rf'<figure id="chart-{chart}"><img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]{{1000,}}"',
            html,
        ), chart
    assert 'id="verdict">Every gate held (2 thresholds of profile staging)' in html
    assert html.count("<tr class=") == 2  # one row per threshold verdict
    assert "/feed/latest: p95_ms &lt;= 300 ms: observed 240 ms" in html
    # The headline figures, as hand-computed in capacity_fixtures.
    assert ">35.0<" in html and "minute +2: 35.0 req/s on 1 task(s)" in html
    assert "prod tasks for 100 req/s (+30%)" in html and ">2<" in html
    assert "min_tasks=2,\n    max_tasks=6,\n    aurora_min_acu=2.5,\n    aurora_max_acu=8," in html
    assert "$495.67" in html and "$1,574.61" in html
    assert "scaled out from 1 to 2 tasks" in html
    assert "ceil(T" in html and "p95 ≤ 300 ms" in html  # the definitions are on the page
    assert "<script" not in html and "http://" not in html.replace("https://aws.amazon.com", "")


def test_missed_gates_are_the_first_thing_the_page_says(tmp_path: Path) -> None:
    html = render(tmp_path, thresholds_failed=True)
    assert (
        '<p class="banner bad" id="verdict">1 of 2 gates were missed: Aggregated: failure_ratio &lt;= 0.50%'
        in html
    )
    assert '<tr class="fail"><td>Aggregated</td>' in html


def test_without_cloudwatch_the_page_says_what_is_missing_and_shows_what_it_has(tmp_path: Path) -> None:
    html = render(tmp_path, with_cloudwatch=False)
    assert "No CloudWatch data: this page shows what the load generator measured only." in html
    assert "none of the stage&#x27;s resource names is set" in html
    for chart in ("users", "rps", "latency"):
        assert f'<figure id="chart-{chart}"><img' in html
    for chart in ("tasks", "acu"):
        assert f'<figure id="chart-{chart}" class="missing"><p>No ' in html
    assert "No recommendation: the running task count is unknown" in html


def _chromium() -> str | None:
    configured = os.environ.get("YOCTOGRAM_CHROMIUM")
    candidates = [configured] if configured else ["/usr/bin/chromium", shutil.which("chromium")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


_OPEN_PAGE = """
import json, sys
from playwright.sync_api import sync_playwright

chromium, url = sys.argv[1], sys.argv[2]
problems, requests = [], []
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
    try:
        tab = browser.new_page()
        tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        tab.on("request", lambda r: requests.append(r.url))
        tab.goto(url, wait_until="load")
        images = tab.eval_on_selector_all("figure img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
        seen = {"problems": problems, "requests": requests, "images": images, "title": tab.title(),
                "headline": tab.inner_text("#headline")}
    finally:
        browser.close()
print(json.dumps(seen))
"""


@pytest.mark.browser
def test_the_page_opens_in_headless_chromium_without_errors(tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("no Chromium: install it (apt-get install -y chromium) or set YOCTOGRAM_CHROMIUM")
        pytest.skip("no Chromium: install it (apt-get install -y chromium) or set YOCTOGRAM_CHROMIUM")
    pytest.importorskip("playwright.sync_api")
    path = tmp_path / "capacity.html"
    path.write_text(render(tmp_path), encoding="utf-8")
    # Its own process: a sync Playwright cannot start while another test tree's is still open.
    opened = subprocess.run(
        [sys.executable, "-c", _OPEN_PAGE, chromium, path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert opened.returncode == 0, opened.stderr
    seen = json.loads(opened.stdout)
    problems, images, requests = seen["problems"], seen["images"], seen["requests"]
    title, headline = seen["title"], seen["headline"]
    assert problems == []
    assert len(images) == len(page.CHARTS) and all(done and width > 0 for done, width in images)
    assert all(url.startswith(("file:", "data:")) for url in requests), requests  # self-contained
    assert title == "Capacity review of load test 270101-000030-ab"
    assert "35.0" in headline
