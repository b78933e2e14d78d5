"""The HTML reports in a real headless browser: Debian's chromium, driven by Playwright.

Each page must open from a file with nothing else beside it, show every section with its
tables and charts (images that decoded), and log no console error. CI installs chromium
(.ci/run); elsewhere, without it, the test is skipped, never under CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_report(browser: Any, path: Path, sections: list[str]) -> None:
    # Alone in its folder: a self-contained page needs nothing beside it.
    alone = path.parent / "alone"
    alone.mkdir()
    page_file = alone / path.name
    shutil.move(path, page_file)
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    for section in sections:
        locator = page.locator(f"section#{section}")
        assert locator.is_visible(), section
        assert locator.locator("h2").inner_text().strip()
    images = page.locator("img")
    assert images.count() >= 1
    for n in range(images.count()):
        image = images.nth(n)
        image.scroll_into_view_if_needed()
        assert image.is_visible()
        assert image.evaluate("i => i.complete && i.naturalWidth > 300"), n
    assert page.locator("table").first.is_visible()
    assert errors == []
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    page.close()


def test_simulation_report(
    browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "day.html"
    code, _, err = run_cli(
        capsys, "simulate", str(ROOT / "examples/contact-center/workload.yaml"),
        "--report", str(report), "--interval", "30m", "--target", "80/20",
    )  # fmt: skip
    assert code == 0, err
    text = report.read_text()
    assert "09:00–09:30" in text
    assert "16:30–17:00" in text
    open_report(browser, report, ["summary", "intervals", "queue", "occupancy", "share", "waits"])


def test_sweep_and_staff_reports(
    browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = tmp_path / "mmc.yaml"
    workload.write_text(
        yaml.safe_dump(
            {
                "deployment": {"channels": {"voice": {}}, "queues": {"q": {}}},
                "start": "2026-01-05T09:00:00+01:00",
                "duration": "1h",
                "agents": [{"count": 4, "id": "a{n}", "channels": {"voice": 1}}],
                "traffic": [
                    {"channel": "voice", "rate": "180/h", "handle_time": {"exponential": "1m"}}
                ],
            }
        )
    )
    sweep = tmp_path / "sweep" / "sweep.html"
    code, _, err = run_cli(
        capsys, "sweep", str(workload), "--vary", "agents=4:6", "-r", "3", "--workers", "0",
        "--no-store", "--report", str(sweep),
    )  # fmt: skip
    assert code == 0, err
    open_report(browser, sweep, ["summary", "service-level", "waits", "occupancy"])
    staffing = tmp_path / "staff" / "staff.html"
    code, _, err = run_cli(
        capsys, "staff", str(workload), "-r", "2", "--workers", "0", "--no-store",
        "--report", str(staffing),
    )  # fmt: skip
    assert code == 0, err
    open_report(browser, staffing, ["summary", "chart"])


def test_the_service_level_chart_draws_each_target_where_it_belongs(
    browser: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example's queues are held to 70%, 80% and 90%: three dashed lines, in the page's
    own SVG, each at its height on the 0–105% axis, and the missed targets marked."""
    report = tmp_path / "levels.html"
    code, _, err = run_cli(
        capsys, "simulate", str(ROOT / "examples/service-levels/workload.yaml"),
        "--report", str(report), "--interval", "30m",
    )  # fmt: skip
    assert code == 0, err
    open_report(browser, report, ["summary", "intervals"])
    page = browser.new_page()
    page.goto((tmp_path / "alone" / report.name).as_uri())
    chart = page.locator("section#intervals svg")
    assert chart.count() == 1
    chart.scroll_into_view_if_needed()
    area = page.locator("#service-level-plot-area").bounding_box()
    assert area is not None
    assert area["height"] > 100
    lines = page.locator("[id^='service-level-target-']")
    assert lines.count() == 3
    for n, target in enumerate([0.7, 0.8, 0.9]):
        line = page.locator(f"#service-level-target-{n}")
        # A horizontal line has no height, which Playwright counts as not visible: ask
        # the browser for its stroke instead.
        stroke = line.locator("path").evaluate(
            "p => [getComputedStyle(p).stroke, getComputedStyle(p).strokeDasharray,"
            " getComputedStyle(p).visibility]"
        )
        colour, dashes, visibility = stroke
        assert colour not in ("none", "")
        assert dashes != "none"
        assert visibility == "visible"
        box = line.bounding_box()
        assert box is not None
        assert box["width"] > 0.9 * area["width"]  # across the whole chart
        expected = area["y"] + area["height"] * (105 - 100 * target) / 105
        assert abs(box["y"] + box["height"] / 2 - expected) < 2, (target, box, area)
    summary = page.locator("section#summary table")
    rows = {row.locator("td").first.inner_text(): row for row in summary.locator("tbody tr").all()}
    assert rows["queue vip"].locator("td.miss").count() == 2  # the level and the verdict
    assert rows["queue callbacks"].locator("td.met").count() == 2
    assert "90% in 10 s" in rows["queue vip"].inner_text()
    page.close()
