"""Roundcube and Postfix Admin used the way a person uses them: a real browser (Debian's
headless Chromium through chromedriver, tests/lab/_browser.py) on the host, the web node's
pages, the mail nodes behind them. Needs a converged lab (tests/lab/conftest.py)."""

from __future__ import annotations

import uuid

import pytest
import yaml
from _browser import browser_problem, chromium, wait_text, wait_visible
from _roles_helpers import PASSWORDS, REPO, fetch_raw, imap_subjects, send_mail
from mc_wait import wait_for
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(browser_problem() is not None, reason=str(browser_problem())),
]

ALICE, BOB = "alice@example.test", "bob@example.test"


def _admin() -> tuple[str, str]:
    """Postfix Admin's superadmin as the lab pillar makes it (salt/web/config)."""
    pillar = REPO / "pillar"
    domain = yaml.safe_load((pillar / "topology.sls").read_text())["mailcluster"]["cluster"]
    secrets = yaml.safe_load((pillar / "secrets.sls").read_text())["mailcluster"]["secrets"]
    return f"admin@{domain['domain']}", secrets["postfixadmin"]["admin_password"]


def _roundcube_login(driver, url: str, user: str) -> None:
    driver.get(url)
    wait_visible(driver, "#rcmloginuser").send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "#rcmloginpwd").send_keys(PASSWORDS[user])
    driver.find_element(By.CSS_SELECTOR, "#rcmloginsubmit").click()


def _read(driver, subject: str) -> str:
    """Open the message ``subject`` from the list (a double click opens it in full);
    returns its body as shown."""
    wait_visible(driver, "#messagelist tbody tr.message")
    rows = driver.find_elements(By.CSS_SELECTOR, "#messagelist tbody tr.message")
    row = next(r for r in rows if subject in r.text)
    ActionChains(driver).double_click(row).perform()
    wait_text(driver, "h2.subject", subject)
    return wait_text(driver, "#messagebody", f"lab test message {subject}")


def _compose_and_send(driver, rcpt: str, subject: str, body: str) -> None:
    wait_visible(driver, "a.compose").click()
    to = wait_visible(driver, ".recipient-input input")
    to.send_keys(rcpt + ",")
    driver.find_element(By.CSS_SELECTOR, "#compose-subject").send_keys(subject)
    driver.find_element(By.CSS_SELECTOR, "#composebody").send_keys(body)
    wait_visible(driver, "button.send").click()
    # Roundcube goes back to the mailbox once the SMTP server took the message
    wait_visible(driver, "#messagelist", timeout=60)


def test_roundcube_login_read_send_logout(lab, tmp_path):
    web = f"https://{lab.ip('ns1')}/roundcube/"
    subject = f"webmail-{uuid.uuid4().hex[:8]}"
    send_mail(f"{lab.lab.subnet}.111", ALICE, subject)  # mx1's service IP (pillar/topology.sls)
    wait_for(lambda: subject in imap_subjects(lab.ip("mx1"), ALICE), 60, what="test mail in IMAP")
    reply = f"webmail-sent-{uuid.uuid4().hex[:8]}"
    with chromium() as driver:
        _roundcube_login(driver, web, ALICE)
        inbox = wait_text(driver, "#messagelist", subject, timeout=45)
        driver.save_screenshot(str(tmp_path / "roundcube-inbox.png"))
        assert subject in inbox
        assert f"lab test message {subject}" in _read(driver, subject)
        _compose_and_send(driver, BOB, reply, f"sent from Roundcube {reply}")
        wait_visible(driver, "#taskmenu a.logout").click()
        wait_visible(driver, "#rcmloginuser")
        # the session is gone: the mailbox asks for a login again
        driver.get(web + "?_task=mail&_mbox=INBOX")
        wait_visible(driver, "#rcmloginuser")
    raw = wait_for(lambda: fetch_raw(lab.ip("mx2"), BOB, reply), 60, what=f"{reply} at {BOB}")
    assert f"From: {ALICE}".encode() in raw and f"sent from Roundcube {reply}".encode() in raw


def test_postfixadmin_login_in_a_browser(lab):
    base = f"https://{lab.ip('ns1')}/postfixadmin/"
    user, password = _admin()
    with chromium() as driver:
        driver.get(base + "login.php")
        wait_visible(driver, "#fUsername").send_keys(user)
        driver.find_element(By.CSS_SELECTOR, "#fPassword").send_keys(password + Keys.ENTER)
        wait_visible(driver, "a[href='login.php']")  # the logout link of a logged-in admin
        driver.get(base + "list.php?table=domain")
        domains = wait_text(driver, "body", "example.test")
        assert "sales.test" in domains
        driver.find_element(By.LINK_TEXT, "Logout").click()
        wait_visible(driver, "#fUsername")
        driver.get(base + "list.php?table=domain")
        wait_visible(driver, "#fUsername")
