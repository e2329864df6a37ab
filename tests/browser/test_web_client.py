"""The web client in Chromium: sign-in, the master device, contacts with Smart Contacts and
search, keyboard use, storage, log out, CORS from an unlisted origin, and the strict CSP."""

from __future__ import annotations

import json

import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.browser.seed import seed

TOKEN_KEY = "contact-sync.session"


def test_login_choose_device_and_see_contacts_with_a_smart_badge(
    browser, browser_stack, new_account
):
    seeded = seed(browser_stack, new_account)
    browser.open().login(seeded.alice)

    browser.wait_view("devices-view")
    assert "Alice's phone" in browser.text("device-list")
    assert "Alice's tablet" in browser.text("device-list")
    assert "3 contacts" in browser.text("device-list")
    browser.choose_device("phone-1")

    browser.wait_contacts(lambda ids: len(ids) == 3)
    assert browser.contact_names() == {
        "bob": "Bob Builder",
        "dora": "Dora Explorer",
        "zoe": "Zoë Ångström",
    }
    assert browser.badges() == {"bob": [f"On-net: {seeded.bob.username}"], "dora": [], "zoe": []}
    assert browser.text("contacts-heading") == "Contacts of Alice's phone"
    browser.screenshot("contacts-with-smart-badge")

    # Search by name (accents and case folded) and by number (digits, any formatting).
    for query, expected in [
        ("dora", ["dora"]),
        ("ZOE", ["zoe"]),
        ("builder bob", ["bob"]),
        ("710 0002", ["bob"]),
        ("(555) 710", ["bob", "dora"]),
        ("7946", ["zoe"]),
        ("nobody-has-this", []),
    ]:
        browser.fill("search", query)
        browser.wait_contacts(lambda ids, expected=expected: ids == expected, what=repr(query))
    assert "0 of 3 contacts match" in browser.text("result-count")
    browser.fill("search", "")
    browser.wait_contacts(lambda ids: len(ids) == 3)

    # The token is in this tab's sessionStorage only; the master device choice in localStorage.
    stored = browser.storage()
    assert json.loads(stored["session"][TOKEN_KEY])["token"] == seeded.alice.token
    assert all(seeded.alice.token not in value for value in stored["local"].values())
    assert "phone-1" in stored["local"].values()

    # A reload keeps both: straight back to the same device's contacts.
    browser.reload()
    browser.wait_view("contacts-view")
    browser.wait_contacts(lambda ids: len(ids) == 3)

    # Settings: another master device, remembered across a reload too.
    browser.by_id("settings-button").click()
    browser.choose_device("tablet-1")
    browser.wait(lambda: "0 contacts" in browser.text("result-count"), what="the empty tablet")
    browser.reload()
    browser.wait_view("contacts-view")
    browser.wait(lambda: browser.text("contacts-heading") == "Contacts of Alice's tablet")
    # No script error and no CSP violation: the page works under its policy.
    assert browser.console_errors(network=False) == []


def test_keyboard_only_login_and_device_choice(browser, browser_stack, new_account):
    seeded = seed(browser_stack, new_account)
    browser.open()
    browser.wait_view("login-view")
    keys = ActionChains(browser.driver)

    def tab_to(element_id: str, limit: int = 12) -> None:
        for _ in range(limit):
            if browser.driver.switch_to.active_element.get_attribute("id") == element_id:
                return
            keys.send_keys(Keys.TAB).perform()
        raise AssertionError(f"Tab never reached #{element_id}")

    tab_to("cloud-id")
    # Keyboard focus is visible (a real outline, not the browser's default removed).
    outline = browser.driver.execute_script(
        "const s = getComputedStyle(document.activeElement);"
        "return [s.outlineStyle, parseFloat(s.outlineWidth)];"
    )
    assert outline[0] != "none" and outline[1] >= 2, outline
    keys.send_keys(seeded.alice.cloud_id, Keys.TAB).perform()
    keys.send_keys(seeded.alice.username, Keys.TAB).perform()
    keys.send_keys(seeded.alice.password, Keys.ENTER).perform()

    browser.wait_view("devices-view")
    # Focus went to the view's heading; the device radios and the button follow it.
    assert browser.driver.switch_to.active_element.get_attribute("id") == "devices-heading"
    tab_to("choose-device")
    keys.send_keys(Keys.ENTER).perform()
    browser.wait_view("contacts-view")
    browser.wait_contacts(lambda ids: len(ids) == 3)


def test_log_out_revokes_the_token_and_forgets_it(browser, browser_stack, new_account):
    seeded = seed(browser_stack, new_account)
    browser.open().login(seeded.alice)
    browser.choose_device("phone-1")
    browser.wait_contacts(lambda ids: len(ids) == 3)

    browser.by_id("logout-button").click()
    browser.wait_view("login-view")
    assert "signed out" in browser.text("status").lower()
    assert browser.alert() == ""
    assert TOKEN_KEY not in browser.storage()["session"]
    # Revoked at the SSO: the phone, which shares the account's token, is refused too.
    assert seeded.phone.get("/v1/devices").status_code == 401

    # The master device is no secret and stays chosen for the next sign-in.
    browser.login(seeded.alice)
    browser.wait_view("contacts-view")
    browser.wait_contacts(lambda ids: len(ids) == 3)


def test_wrong_password_shows_an_error_and_stores_nothing(browser, browser_stack, new_account):
    seeded = seed(browser_stack, new_account)
    browser.open()
    seeded.alice.password += "-wrong"
    browser.login(seeded.alice)
    browser.wait(lambda: "wrong SIP username or password" in browser.alert(), what="the error")
    assert browser.view() == "login-view"
    assert browser.storage() == {"session": {}, "local": {}}


def test_an_origin_not_in_cors_origins_cannot_sign_in(
    browser, browser_stack, new_account, provider
):
    seeded = seed(browser_stack, new_account)
    browser.open(browser_stack.foreign_page.url)
    browser.wait_view("login-view")  # the page itself works: it is the services that refuse
    browser.login(seeded.alice)

    browser.wait(lambda: "Sign-in failed" in browser.alert(), what="the sign-in error")
    assert "does not accept requests from this page" in browser.alert()
    assert browser.by_id("alert").is_displayed()
    assert browser.view() == "login-view"
    assert browser.storage() == {"session": {}, "local": {}}
    browser.screenshot("unlisted-origin-refused")
    # The preflight failed, so the credentials were never sent: ext-auth never saw this login
    # from the browser (only the seed's own login through the API).
    logins = [r for r in provider.auth_requests if seeded.alice.username in r.query]
    assert len(logins) == 1


def test_the_page_runs_under_a_strict_csp_with_accessible_markup(
    browser, browser_stack, new_account
):
    seeded = seed(browser_stack, new_account)
    page = requests.get(browser_stack.page.url + "/", verify=browser_stack.tls.ca_path, timeout=10)
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert f"connect-src 'self' {browser_stack.sso.url} {browser_stack.contacts.url}" in policy
    assert "unsafe" not in policy

    browser.open().login(seeded.alice)
    browser.choose_device("phone-1")
    browser.wait_contacts(lambda ids: len(ids) == 3)
    report = browser.driver.execute_script(
        """
        const named = (el) => el.labels && el.labels.length > 0 && el.labels[0].textContent.trim();
        const inline = document.createElement("script");
        inline.textContent = "window.__inlineRan = true";
        document.head.append(inline);
        return {
          lang: document.documentElement.lang,
          inlineScripts: document.querySelectorAll("script:not([src])").length - 1,
          styleAttributes: document.querySelectorAll("[style]").length,
          inlineRan: window.__inlineRan === true,
          landmarks: ["header", "nav", "main", "footer"].map(
            (tag) => document.querySelectorAll(tag).length),
          unlabelled: [...document.querySelectorAll("input")]
            .filter((el) => !named(el)).map((el) => el.id || el.name),
          unnamedButtons: [...document.querySelectorAll("button")]
            .filter((el) => !el.textContent.trim()).length,
          status: [document.getElementById("status").getAttribute("role"),
                   document.getElementById("status").getAttribute("aria-live")],
          alertRole: document.getElementById("alert").getAttribute("role"),
          headings: document.querySelectorAll("h1").length,
        };
        """
    )
    assert report == {
        "lang": "en",
        "inlineScripts": 0,
        "styleAttributes": 0,
        "inlineRan": False,  # the CSP blocked the injected inline script
        "landmarks": [1, 1, 1, 1],
        "unlabelled": [],
        "unnamedButtons": 0,
        "status": ["status", "polite"],
        "alertRole": "alert",
        "headings": 4,
    }
    violations = [m for m in browser.console_errors() if "Content Security Policy" in m]
    # Exactly the one inline script this test injected, nothing of the page's own.
    assert len(violations) == 1, violations


def test_refresh_without_changes_is_answered_304(browser, browser_stack, new_account):
    seeded = seed(browser_stack, new_account)
    browser.open().login(seeded.alice)
    browser.choose_device("phone-1")
    browser.wait_contacts(lambda ids: len(ids) == 3)
    statuses = browser.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const [contactsUrl, token] = [arguments[0], arguments[1]];
        import("./book.js").then(async ({ AddressBook }) => {
          const seen = [];
          const book = new AddressBook("phone-1", async (path, headers) => {
            const response = await fetch(contactsUrl + path, {
              headers: { Authorization: "Bearer " + token, ...headers }, cache: "no-store" });
            seen.push([path, headers["If-None-Match"] ? "conditional" : "plain",
                       response.status]);
            return { status: response.status, headers: response.headers,
                     body: response.status === 304 ? null : await response.json() };
          });
          await book.load();
          const first = await book.update();
          const second = await book.update();
          done({ seen, first, second, count: book.contacts.size, revision: book.revision });
        }).catch((error) => done({ error: String(error) }));
        """,
        browser_stack.contacts.url,
        seeded.alice.token,
    )
    revision = statuses.get("revision")
    assert statuses == {
        "seen": [
            ["/v1/devices/phone-1/contacts", "plain", 200],
            [f"/v1/devices/phone-1/contacts?since={revision}", "plain", 200],
            [f"/v1/devices/phone-1/contacts?since={revision}", "conditional", 304],
        ],
        "first": True,
        "second": False,
        "count": 3,
        "revision": 1,
    }


def test_sse_parser_backoff_and_search_rules(browser, browser_stack):
    """The page's own modules, run in the browser: chunked SSE with every line ending, the
    reconnect delays, and the search rules."""
    browser.open()
    browser.wait_view("login-view")
    result = browser.driver.execute_async_script(
        r"""
        const done = arguments[arguments.length - 1];
        Promise.all([import("./sse.js"), import("./backoff.js"), import("./book.js")])
          .then(([sse, backoff, book]) => {
            const events = [];
            const parser = new sse.SseParser((event) => events.push(event));
            for (const chunk of [
              "\ufeffid: 1\r", "\nevent: change\r\ndata: {\"revision\"", ": 1}\r\n\r",
              "\n: keep-alive\n\n", "data: a\ndata: b\n\nid: 2\u0000x\nevent: change\rdata:3\r",
              "\r", "retry: 5000\nretry: x\nevent: ignored\n\n", "data: unfinished",
            ]) parser.feed(chunk);
            const delay = (attempt, r) => backoff.backoffDelay(attempt, { random: () => r });
            const bob = { contactId: "b", fname: "Bob",
                          contactEntries: [{ type: "tel", uri: "+1 (555) 710-0002" }] };
            done({
              events,
              lastEventId: parser.lastEventId,
              retry: parser.retry,
              delays: [0, 1, 2, 3, 5, 10, 60].map((n) => [delay(n, 0), delay(n, 1)]),
              names: [
                book.displayName({ contactId: "x", displayName: " Ann " }),
                book.displayName({ contactId: "x", fname: "Ann", lname: "Lee" }),
                book.displayName({ contactId: "x", company: "ACME" }),
                book.displayName({ contactId: "x", contactEntries: [{ uri: "+1555" }] }),
                book.displayName({ contactId: "x" }),
              ],
              search: ["bob", "BOB", "555-710", "7100002", "710 0003", "alice", ""].map(
                (q) => book.matcher(q)(bob)),
            });
          })
          .catch((error) => done({ error: String(error) }));
        """
    )
    assert result == {
        "events": [
            {"type": "change", "data": '{"revision": 1}', "lastEventId": "1"},
            {"type": "message", "data": "a\nb", "lastEventId": "1"},
            {"type": "change", "data": "3", "lastEventId": "1"},
        ],
        "lastEventId": "1",
        "retry": 5000,
        "delays": [
            [500, 1000],
            [1000, 2000],
            [2000, 4000],
            [4000, 8000],
            [15000, 30000],
            [15000, 30000],
            [15000, 30000],
        ],
        "names": ["Ann", "Ann Lee", "ACME", "+1555", "x"],
        "search": [True, True, True, True, False, False, True],
    }
