"""The web console in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven with Selenium against the console over 127.0.0.1.

Load the overview, make a dry run, review it, approve it and find the run in the run log.
The screenshots of docs/console.md are taken here: ``CUSTSYNC_UPDATE_SCREENSHOTS=1`` writes
them to docs/images/. Without a browser these tests skip with a message; under ``CI=true``
they fail instead (.ci/run installs the browser).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from custsync.engine.cli import main
from custsync.engine.console.app import ServerThread, create_app

from test_console import EMAIL, World, _park_jane, world  # noqa: F401 - the fixture

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    missing = [p for p in (CHROMIUM, DRIVER) if not Path(p).exists()]
    if missing:
        message = (f"no browser for the console tests ({', '.join(missing)} missing): "
                   "apt-get install chromium chromium-driver")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _find(driver: Any, by: str, value: str) -> Any:
    """The element once the page that has it is there (a click that submits a form returns
    before the next page has loaded)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 60).until(
        expected_conditions.presence_of_element_located((by, value))
    )


def _shot(driver: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"console-{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 1000
    if os.environ.get("CUSTSYNC_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMAGES / path.name)


def test_review_and_approve_a_plan_in_the_browser(
    world: World, browser: Any, tmp_path: Path  # noqa: F811 - the fixture
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with ServerThread(create_app(None, world.service)) as server:
        browser.get(f"{server.url}/")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
        assert "main" in _find(browser, By.ID, "jobs").text

        browser.find_element(By.LINK_TEXT, "Plan review").click()
        Select(_find(browser, By.NAME, "direction")).select_by_value("import")
        browser.find_element(By.CSS_SELECTOR, "#make-plan button").click()
        summary = _find(browser, By.ID, "summary").text
        assert summary.endswith("1 to create, 0 to update, 0 to link, 1 skipped.")
        decisions = _find(browser, By.ID, "decisions").text
        assert EMAIL not in decisions and "j***" in decisions
        _shot(browser, tmp_path, "plan")

        browser.find_element(By.CSS_SELECTOR, "#approve button").click()
        outcomes_table = _find(browser, By.ID, "outcomes")
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Run #")
        outcomes = outcomes_table.text
        assert "create" in outcomes and "rules/import_" in outcomes
        _shot(browser, tmp_path, "run")

        browser.find_element(By.LINK_TEXT, "Runs").click()
        assert "main" in _find(browser, By.ID, "runs").text
        browser.find_element(By.LINK_TEXT, "Overview").click()
        assert _find(browser, By.CSS_SELECTOR, "figure.chart svg rect")
        _shot(browser, tmp_path, "overview")
        browser.find_element(By.LINK_TEXT, "Rules").click()
        assert "import_match" in _find(browser, By.ID, "rules").text
        _shot(browser, tmp_path, "rules")
    assert EMAIL in world.erp_emails()


def test_retry_a_parked_record_in_the_browser(
    world: World, browser: Any, tmp_path: Path  # noqa: F811 - the fixture
) -> None:
    from selenium.webdriver.common.by import By

    gid = _park_jane(world)
    with ServerThread(create_app(None, world.service)) as server:
        browser.get(f"{server.url}/")
        browser.find_element(By.LINK_TEXT, "Attention").click()
        table = _find(browser, By.ID, "attention").text
        assert gid in table and "parked" in table and EMAIL not in table
        _shot(browser, tmp_path, "attention")
        browser.find_element(By.CSS_SELECTOR, "#attention button[value^='retry']").click()
        assert "reads it again" in _find(browser, By.CSS_SELECTOR, "p.notice").text
        assert main(["sync", "-c", str(world.config_path), "--direction", "import",
                     "--no-progress"]) in (0, 3)
        browser.get(f"{server.url}/attention")
        assert "Nothing needs attention." in _find(browser, By.ID, "attention").text
        browser.find_element(By.LINK_TEXT, "Runs").click()
        _find(browser, By.CSS_SELECTOR, "#runs tbody a").click()
        assert gid in _find(browser, By.ID, "outcomes").text
    assert EMAIL in world.erp_emails()
