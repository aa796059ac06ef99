"""A headless Chromium for the web tests, driven by Selenium through chromedriver.

Debian's chromium and chromium-driver come from one source package, so the driver always
matches the browser (Playwright would bring a Chromium build of its own). Both paths are given
explicitly: Selenium then never runs Selenium Manager, which would try to download a driver.
"""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import tempfile

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser_problem() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not pathlib.Path(path).is_file():
            return f"{path} is missing (Debian's {package}; lab/host-setup installs it)"
    return None


@contextlib.contextmanager
def chromium():
    """A headless Chromium in a fresh profile; yields the Selenium driver."""
    profile = tempfile.mkdtemp(prefix="mc-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests run as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        # the web node's certificate is the cluster CA's (or the lab ACME CA's) for names
        # the host does not resolve; the tests open it by IP
        "--ignore-certificate-errors",
        "--window-size=1400,1000",  # Roundcube's desktop layout (preview pane, task menu)
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_visible(driver, css: str, timeout: float = 30):
    """The element ``css`` once it is displayed; on timeout the page's title and URL say
    where the browser was."""
    try:
        return WebDriverWait(driver, timeout).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, css))
        )
    except TimeoutException:
        raise AssertionError(
            f"{css!r} not shown within {timeout} s at {driver.current_url} ({driver.title!r})"
        ) from None


def wait_text(driver, css: str, text: str, timeout: float = 30) -> str:
    """The text of the element ``css`` once it contains ``text``."""
    try:
        WebDriverWait(driver, timeout).until(
            ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
        )
    except TimeoutException:
        seen = driver.find_elements(By.CSS_SELECTOR, css)
        raise AssertionError(
            f"{text!r} not in {css!r} within {timeout} s at {driver.current_url}; last text: "
            f"{(seen[0].text if seen else '(no such element)')[:500]!r}"
        ) from None
    return driver.find_element(By.CSS_SELECTOR, css).text
