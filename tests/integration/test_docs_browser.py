"""The built manual in a real browser: headless Chromium driven by selenium/chromedriver.

The site (the session's one strict build, see tests/unit/test_docs_build.py) is served on
127.0.0.1 from a thread by the server of `kvmops docs --serve`. The test opens a runbook page and checks its executed
output, drives the material search box to find "lvremove", and saves screenshots.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops_manual.build import make_server
from tests.conftest import need_tools
from tests.unit.test_docs_build import BuiltDocs, built_docs

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,1000")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuiltDocs, str]]:
    docs = built_docs(tmp_path_factory)
    httpd = make_server(docs.site, 0)  # what `kvmops docs --serve` uses: 127.0.0.1 only
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield docs, f"http://127.0.0.1:{httpd.server_port}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    need_tools("chromium", "chromedriver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: object, path: Path) -> Path:
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 20_000, f"{path} is not a real screenshot"
    return path


def test_runbook_page_shows_executed_output_and_search_finds_lvremove(served, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    docs, base = served
    driver = browser
    wait = WebDriverWait(driver, 30)
    names = [i.name for i in docs.runbooks]
    name = "lv-snapshot" if "lv-snapshot" in names else names[0]

    driver.get(f"{base}runbooks/generated/{name}/")
    banner = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".kvmops-provenance")))
    assert "Plan-mode run against the demo site (recorded facts), nothing executed" in banner.text
    outputs = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
    printed = "\n".join(o.text for o in outputs)
    if name == "lv-snapshot":
        assert "# Plan: snapshot rl_build/vm" in printed
        assert "lvcreate --snapshot --name vm" in printed
    else:
        assert printed.strip(), f"no executed output visible on the {name} page"
    _shot(driver, tmp_path / "runbook.png")

    driver.get(base)
    box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "input.md-search__input")))
    box.click()
    box.send_keys("lvremove")
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".md-search-result__item")))
    links = [a.get_attribute("href") or "" for a in driver.find_elements(By.CSS_SELECTOR, ".md-search-result__link")]
    assert any("/reference/safety/" in href for href in links), links
    meta = driver.find_element(By.CSS_SELECTOR, ".md-search-result__meta").text
    assert "matching document" in meta, meta
    shot = _shot(driver, tmp_path / "search.png")
    print(f"screenshots: {tmp_path / 'runbook.png'} {shot}")


def test_the_journal_filters_by_guest_and_links_the_guest_pages(served, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    docs, base = served
    driver = browser
    wait = WebDriverWait(driver, 30)
    runs = docs.journal_runs
    touching = {r.id for r in runs if r.params.get("guest") == "influx"}
    assert touching and len(touching) < len(runs), "the session's journal needs runs on influx and on others"

    def shown() -> set[str]:
        rows = driver.find_elements(By.CSS_SELECTOR, "#kvmops-journal-table tbody tr")
        return {r.find_elements(By.TAG_NAME, "td")[-1].text for r in rows if r.is_displayed()}

    driver.get(f"{base}journal/")
    box = wait.until(ec.element_to_be_clickable((By.ID, "kvmops-journal-filter")))
    assert shown() == {r.id for r in runs}
    box.send_keys("influx")
    wait.until(lambda d: shown() == touching)
    assert "runs touched a guest matching" in driver.find_element(By.ID, "kvmops-journal-count").text
    _shot(driver, tmp_path / "journal-filtered.png")
    box.clear()
    box.send_keys("no-such-guest")
    wait.until(lambda d: shown() == set())

    driver.get(f"{base}journal/?guest=influx")  # what a guest page links to
    wait.until(lambda d: shown() == touching)
    driver.find_element(By.CSS_SELECTOR, "#kvmops-journal-table a[href='hosts/demo/influx/']").click()
    heading = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "article h1")))
    assert heading.text == "Guest influx on demo"
    assert "vminflux-20261120T0900Z" in driver.find_element(By.CSS_SELECTOR, "article").text
