"""The web client's change stream (GET /v1/devices/{id}/events read with fetch): a change made
by the phone shows within 2 s, Smart Contacts changes show live, revocation and device deletion
end the session or the device view, and a restart of the Contacts service loses no change."""

from __future__ import annotations

from tests.browser.conftest import REINTROSPECT_SECONDS
from tests.browser.seed import seed, tel

# The bound for a change made through the API to show on the page.
LIVE_BOUND = 2.0


def open_contacts(browser, seeded) -> None:
    browser.open().login(seeded.alice)
    browser.choose_device("phone-1")
    browser.wait_contacts(lambda ids: len(ids) == 3)
    browser.wait_live()
    # Set once; still there later only if the page was never reloaded.
    browser.driver.execute_script("window.__sameDocument = true")


def same_document(browser) -> bool:
    return browser.driver.execute_script("return window.__sameDocument === true")


def test_a_phone_patch_appears_within_two_seconds(
    browser, browser_stack, new_account, record_property
):
    seeded = seed(browser_stack, new_account)
    open_contacts(browser, seeded)

    seeded.phone.upsert(
        "phone-1", [{"contactId": "eve", "displayName": "Eve Added", "contactEntries": []}]
    )
    added = browser.wait_contacts(lambda ids: "eve" in ids, LIVE_BOUND, "the added contact")

    seeded.phone.upsert("phone-1", delete=["dora"])
    deleted = browser.wait_contacts(lambda ids: "dora" not in ids, LIVE_BOUND, "the deletion")

    seeded.phone.upsert(
        "phone-1",
        [{"contactId": "zoe", "displayName": "Zoë Renamed", "contactEntries": []}],
    )
    renamed = browser.wait_contacts(
        lambda _ids: browser.contact_names().get("zoe") == "Zoë Renamed", LIVE_BOUND, "the rename"
    )
    assert browser.contact_ids() == ["bob", "eve", "zoe"]
    assert same_document(browser)
    record_property("seconds_to_show", [round(s, 3) for s in (added, deleted, renamed)])
    print(f"\nchange shown after {added:.3f} s, {deleted:.3f} s, {renamed:.3f} s")
    browser.screenshot("live-update")


def test_a_new_on_net_user_shows_a_badge_live(browser, browser_stack, new_account):
    seeded = seed(browser_stack, new_account)
    carol = new_account(["+15557100099"])  # Dora's number, not yet known to Contacts
    open_contacts(browser, seeded)
    assert browser.badges()["dora"] == []

    # Carol's first request teaches Smart Contacts her number: alice's result changes.
    assert browser_stack.phone(carol).get("/v1/devices").status_code == 200
    browser.wait(
        lambda: browser.badges().get("dora") == [f"On-net: {carol.username}"],
        10,
        "the new Smart Contacts badge",
    )
    assert same_document(browser)
    browser.screenshot("smart-badges-live")  # docs/img/web-client.png is a copy of this one


def test_a_revoked_token_returns_to_login_on_the_next_request(browser, browser_stack, new_account):
    seeded = seed(browser_stack, new_account)
    open_contacts(browser, seeded)

    browser_stack.revoke(seeded.alice.token)
    browser.by_id("refresh-button").click()
    browser.wait_view("login-view")
    assert "session has ended" in browser.alert()
    assert browser.stored_token() is None


def test_a_revoked_token_ends_the_stream_and_returns_to_login(browser, browser_stack, new_account):
    seeded = seed(browser_stack, new_account)
    open_contacts(browser, seeded)

    browser_stack.revoke(seeded.alice.token)
    # No click: the stream's own token re-check ends it, and the reconnection gets the 401.
    browser.wait_view("login-view", timeout=REINTROSPECT_SECONDS + 20)
    assert "session has ended" in browser.alert()
    assert browser.stored_token() is None
    assert same_document(browser)


def test_deleting_the_master_device_returns_to_the_device_choice(
    browser, browser_stack, new_account
):
    seeded = seed(browser_stack, new_account)
    open_contacts(browser, seeded)

    assert seeded.phone.delete("/v1/devices/phone-1").status_code == 204
    browser.wait_view("devices-view", timeout=20)
    browser.wait(lambda: "was removed" in browser.alert(), what="the removal notice")
    assert "phone-1" not in browser.text("device-list")
    assert "phone-1" not in browser.storage()["local"].values()


def test_the_stream_reconnects_after_a_contacts_restart_and_misses_nothing(
    browser, browser_stack, new_account, contacts_restartable
):
    seeded = seed(browser_stack, new_account)
    open_contacts(browser, seeded)

    contacts_restartable.stop()
    browser.wait(
        lambda: browser.stream_state() == "reconnecting", 30, "the page to notice the outage"
    )
    browser.screenshot("reconnecting")
    contacts_restartable.start(timeout=60)
    # At once, before the page's next attempt (it is backing off): only Last-Event-ID on the
    # reconnection can tell it about this change.
    seeded.phone.upsert(
        "phone-1",
        [
            {
                "contactId": "frank",
                "displayName": "Frank After Restart",
                "contactEntries": [tel("m", "+15557100123")],
            }
        ],
    )
    browser.wait_contacts(lambda ids: "frank" in ids, 60, "the change made during the restart")
    browser.wait_live(timeout=30)

    # And the new stream carries later changes as before.
    seeded.phone.upsert("phone-1", delete=["frank"])
    browser.wait_contacts(lambda ids: "frank" not in ids, LIVE_BOUND, "a change after reconnecting")
    assert same_document(browser)


def test_a_smart_contacts_change_while_disconnected_shows_after_reconnecting(
    browser, browser_stack, new_account, contacts_restartable
):
    """A Smart Contacts change has no revision: Last-Event-ID cannot announce it, so the page
    re-reads (If-None-Match) whenever its stream connects again. The page's stream requests
    are blocked (DevTools) across a restart, so the change happens while it has none."""
    seeded = seed(browser_stack, new_account)
    carol = new_account(["+15557100099"])  # Dora's number, not yet known to Contacts
    open_contacts(browser, seeded)
    assert browser.badges()["dora"] == []

    browser.driver.execute_cdp_cmd("Network.enable", {})
    browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/events*"]})
    try:
        contacts_restartable.stop()
        browser.wait(
            lambda: browser.stream_state() == "reconnecting", 30, "the page to notice the outage"
        )
        contacts_restartable.start(timeout=60)
        assert browser_stack.phone(carol).get("/v1/devices").status_code == 200
        assert browser.badges()["dora"] == []
    finally:
        browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    browser.wait(
        lambda: browser.badges().get("dora") == [f"On-net: {carol.username}"],
        60,
        "the badge learnt while the stream was down",
    )
