"""The web page in a real headless Chromium: search, like three items, see the list change."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,900",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except StaleElementReferenceException:  # the page re-rendered while we looked
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("the page did not reach the expected state in time")
        time.sleep(0.05)


def recs(driver):
    # read in one script: the list may be re-rendered between two WebDriver calls
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#recs li'), li => li.dataset.item)"
    )


def search_and_like(driver, text):
    box = driver.find_element(By.ID, "search")
    box.clear()
    box.send_keys(text)
    wait_for(lambda: text in driver.find_element(By.ID, "results-label").text)
    for _ in range(5):  # the results list may re-render between finding and clicking
        try:
            first = driver.find_element(By.CSS_SELECTOR, "#results li")
            title = first.find_element(By.CSS_SELECTOR, ".title").text
            first.find_element(By.CSS_SELECTOR, ".rate button").click()
            return title
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"the results for {text!r} kept re-rendering")


def test_search_like_three_and_recommendations_change(server, browser, tmp_path):
    browser.get(server.url + "/")
    wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    # before the first rating: onboarding items to rate, no recommendations yet
    assert len(browser.find_elements(By.CSS_SELECTOR, "#results li")) == 20
    assert recs(browser) == []
    assert "ImplicitALS" in browser.find_element(By.ID, "model-line").text

    lists = []
    for query in ("star wars", "toy story", "matrix"):
        liked = search_and_like(browser, query)
        assert query.split()[0] in liked.lower()
        count = len(lists) + 1
        wait_for(lambda c=count: browser.find_element(By.ID, "rated-count").text == str(c))
        wait_for(lambda prev=lists[-1] if lists else []: len(recs(browser)) == 10
                 and recs(browser) != prev)  # fmt: skip
        lists.append(recs(browser))
    assert lists[0] != lists[1] != lists[2]
    because = browser.find_elements(By.CSS_SELECTOR, "#recs .because")
    assert because and all(b.text.startswith("because you liked ") for b in because)
    assert browser.find_element(By.ID, "status").text == ""

    # clicking a recommendation shows similar items
    browser.find_element(By.CSS_SELECTOR, "#recs li .title").click()
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#similar li")) == 10)
    assert browser.find_element(By.ID, "similar-panel").is_displayed()

    shot = Path(os.environ.get("FACTORKIT_SCREENSHOT", tmp_path / "page.png"))
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 140, 2400))  # the whole page
    browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
