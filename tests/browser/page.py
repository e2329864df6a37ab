"""What a test does with the web client in the browser: through the page, as a user would
(typing, clicking, keys), reading back only what the page shows or keeps in storage."""

from __future__ import annotations

import json
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

# A deadline for things the page does at once (a view change after an answer from loopback).
PROMPT = 15.0


class WebClient:
    def __init__(self, driver: WebDriver, url: str, screenshots: Path):
        self.driver = driver
        self.url = url
        self.screenshots = screenshots

    # --- navigation ------------------------------------------------------------------------

    def open(self, url: str | None = None) -> WebClient:
        self.driver.get((url or self.url) + "/")
        return self

    def reload(self) -> None:
        self.driver.refresh()

    def view(self) -> str | None:
        return self.driver.execute_script("return document.documentElement.dataset.view || null")

    def wait_view(self, name: str, timeout: float = PROMPT) -> None:
        self.wait(lambda: self.view() == name, timeout, f"the {name}")

    def wait(self, predicate, timeout: float = PROMPT, what: str = "the page") -> None:
        WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            lambda _driver: predicate(), f"timed out after {timeout} s waiting for {what}"
        )

    # --- reading the page --------------------------------------------------------------------

    def by_id(self, element_id: str):
        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        return self.by_id(element_id).text

    def alert(self) -> str:
        return self.text("alert")

    def stream_state(self) -> str | None:
        return self.by_id("status").get_attribute("data-state")

    def contact_ids(self) -> list[str]:
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#contact-list > li')]"
            ".map((li) => li.dataset.contactId)"
        )

    def contact_names(self) -> dict[str, str]:
        return self.driver.execute_script(
            "return Object.fromEntries([...document.querySelectorAll('#contact-list > li')]"
            ".map((li) => [li.dataset.contactId, li.querySelector('.contact-name').textContent]))"
        )

    def badges(self) -> dict[str, list[str]]:
        """contactId → the Smart Contacts badges shown on it."""
        return self.driver.execute_script(
            "return Object.fromEntries([...document.querySelectorAll('#contact-list > li')]"
            ".map((li) => [li.dataset.contactId,"
            " [...li.querySelectorAll('.smart-badge')].map((b) => b.textContent)]))"
        )

    def storage(self) -> dict[str, dict[str, str]]:
        return self.driver.execute_script(
            "const dump = (s) => Object.fromEntries([...Array(s.length).keys()]"
            ".map((i) => [s.key(i), s.getItem(s.key(i))]));"
            "return {session: dump(sessionStorage), local: dump(localStorage)};"
        )

    def stored_token(self) -> str | None:
        session = self.storage()["session"].get("contact-sync.session")
        return json.loads(session)["token"] if session else None

    # --- doing ---------------------------------------------------------------------------------

    def fill(self, element_id: str, value: str) -> None:
        # Select-all and delete, as a user would: WebElement.clear() fires no `input` event.
        field = self.by_id(element_id)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.BACKSPACE)
        if value:
            field.send_keys(value)

    def login(self, account) -> None:
        self.wait_view("login-view")
        self.fill("cloud-id", account.cloud_id)
        self.fill("username", account.username)
        self.fill("password", account.password)
        self.by_id("login-button").click()

    def choose_device(self, device_id: str) -> None:
        self.wait_view("devices-view")
        self.driver.find_element(
            By.CSS_SELECTOR, f'#device-list input[value="{device_id}"]'
        ).click()
        self.by_id("choose-device").click()
        self.wait_view("contacts-view")

    def wait_contacts(self, predicate, timeout: float = PROMPT, what="the contacts") -> float:
        """Wait until predicate(contact_ids) holds; the seconds it took."""
        started = time.monotonic()
        self.wait(lambda: predicate(self.contact_ids()), timeout, what)
        return time.monotonic() - started

    def wait_live(self, timeout: float = PROMPT) -> None:
        self.wait(lambda: self.stream_state() == "live", timeout, "live updates")

    def screenshot(self, name: str) -> Path:
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def console_errors(self, network: bool = True) -> list[str]:
        """SEVERE console entries: script errors, CSP violations and (unless network=False)
        failed requests, which Chromium logs for every error answer."""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry.get("level") == "SEVERE"
            and (network or "Failed to load resource" not in entry["message"])
        ]
