"""Token records in the real Redis: reuse, renewal, revocation, and what Redis holds."""

from __future__ import annotations

import threading
import time

import pytest

from sso_service import tokens
from sso_service.token_store import TokenStore, connect

SECRET = "k" * 64


@pytest.fixture
def store(redis_db, redis_server):
    client = connect(redis_server.url.rsplit("/", 1)[0] + "/1")
    yield TokenStore(client, SECRET, ttl_seconds=3600)
    client.close()


def test_issue_creates_an_active_token(store):
    token, record = store.issue("C", "alice", ["+15551231234"], "sip:a@b")
    assert tokens.verify(SECRET, token)
    found = store.lookup(token)
    assert found == record
    assert found.phone_numbers == ["+15551231234"]
    assert found.sip_uri == "sip:a@b"
    assert found.exp - found.iat == 3600


def test_relogin_returns_the_same_token_and_updates_the_account(store, redis_db):
    first, _ = store.issue("C", "alice", ["+15551231234"], None)
    lookup = tokens.lookup_id(tokens.verify(SECRET, first))
    redis_db.expire(f"sso:token:{lookup}", 100)
    second, record = store.issue("C", "alice", ["+442071838750"], "sip:new@b")
    assert second == first
    assert record.phone_numbers == ["+442071838750"]
    assert store.lookup(first).sip_uri == "sip:new@b"
    assert redis_db.ttl(f"sso:token:{lookup}") > 3000  # renewed
    assert redis_db.ttl("sso:account:C:alice") > 3000


def test_relogin_keeps_the_original_issue_time(store, redis_db):
    token, first = store.issue("C", "alice", [], None)
    lookup = tokens.lookup_id(tokens.verify(SECRET, token))
    redis_db.hset(f"sso:token:{lookup}", "iat", first.iat - 50)
    _, second = store.issue("C", "alice", [], None)
    assert second.iat == first.iat - 50


def test_accounts_get_distinct_tokens(store):
    a, _ = store.issue("C", "alice", [], None)
    b, _ = store.issue("C", "bob", [], None)
    c, _ = store.issue("D", "alice", [], None)
    assert len({a, b, c}) == 3
    assert store.lookup(b).username == "bob"
    assert store.lookup(c).cloud_id == "D"


def test_concurrent_logins_of_one_account_get_one_token(store):
    results, barrier = [], threading.Barrier(16)

    def login():
        barrier.wait()
        results.append(store.issue("C", "racer", [], None)[0])

    threads = [threading.Thread(target=login) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1


def test_revoke_makes_the_token_inactive_and_next_login_gets_a_new_one(store, redis_db):
    token, _ = store.issue("C", "alice", [], None)
    store.revoke(token)
    assert store.lookup(token) is None
    # Nothing of the token is left; the Cloud ID only remembers that alice logged in once (and
    # the set of Cloud IDs, for the metrics, that C did).
    assert sorted(redis_db.keys("*")) == ["sso:cloud:C:accounts", "sso:clouds"]
    again, _ = store.issue("C", "alice", [], None)
    assert again != token
    assert store.lookup(again)


def test_revoking_an_old_token_keeps_the_current_one(store, redis_db):
    old, _ = store.issue("C", "alice", [], None)
    store.revoke(old)
    current, _ = store.issue("C", "alice", [], None)
    store.revoke(old)
    assert store.lookup(current)


@pytest.mark.parametrize("token", ["", "garbage", None, 5, "a" * 43 + "." + "b" * 43])
def test_revoke_and_lookup_of_nonsense_are_harmless(store, token):
    store.revoke(token)
    assert store.lookup(token) is None


def test_expired_record_is_inactive_and_replaced_on_login(redis_db, redis_server):
    client = connect(redis_server.url.rsplit("/", 1)[0] + "/1")
    store = TokenStore(client, SECRET, ttl_seconds=1)
    try:
        token, _ = store.issue("C", "alice", [], None)
        record = f"sso:token:{tokens.lookup_id(tokens.verify(SECRET, token))}"
        assert 0 < redis_db.pttl(record) <= 1000
        assert 0 < redis_db.pttl("sso:account:C:alice") <= 1000
        assert store.lookup(token) is not None
        time.sleep(1.1)
        assert not redis_db.exists(record, "sso:account:C:alice")  # Redis expired both keys
        assert store.lookup(token) is None
        fresh, _ = store.issue("C", "alice", [], None)
        assert fresh != token
        assert store.lookup(fresh) is not None
    finally:
        client.close()


def test_exp_in_the_past_is_inactive_even_before_redis_expires_it(store, redis_db):
    token, _ = store.issue("C", "alice", [], None)
    lookup = tokens.lookup_id(tokens.verify(SECRET, token))
    redis_db.hset(f"sso:token:{lookup}", "exp", int(time.time()) - 1)
    assert store.lookup(token) is None


def test_a_copy_of_redis_does_not_hold_a_usable_token(store, redis_db):
    token, _ = store.issue("C", "alice", ["+15551231234"], None)
    key, mac = token.split(".")
    dump = repr(
        {
            name: redis_db.hgetall(name) if redis_db.type(name) == "hash" else redis_db.dump(name)
            for name in redis_db.keys("*")
        }
    )
    assert token not in dump
    assert mac not in dump
    assert tokens.lookup_id(key) in dump
    # The key found in Redis is useless without the secret.
    assert store.lookup(key) is None
    assert store.lookup(key + "." + tokens.mac("guess" * 8, key)) is None


def test_another_secret_cannot_read_tokens(store, redis_server):
    token, _ = store.issue("C", "alice", [], None)
    other = TokenStore(store.redis, "z" * 64, 3600)
    assert other.lookup(token) is None
