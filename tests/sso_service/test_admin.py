"""The admin store (sso_service/admin.py) on the real Redis, the per-Cloud-ID keys the token
store keeps for it, and `python -m sso_service accounts revoke` as a real process."""

from __future__ import annotations

import json
import threading

import pytest

from sso_service import tokens
from sso_service.admin import AccountAdmin
from sso_service.token_store import TokenStore, connect
from tests.sso_service.conftest import app_env
from tests.support.admin import audit_lines, basic, run_cli
from tests.support.stack import INTROSPECTION_CLIENT

SECRET = "k" * 64


@pytest.fixture
def redis_client(redis_db, redis_server):
    client = connect(redis_server.url.rsplit("/", 1)[0] + "/1")
    yield client
    client.close()


@pytest.fixture
def store(redis_client):
    return TokenStore(redis_client, SECRET, ttl_seconds=3600)


@pytest.fixture
def admin(redis_client):
    return AccountAdmin(redis_client)


def figures(admin, cloud_id="C") -> tuple[int, int]:
    stats = admin.stats(cloud_id)
    return stats.accounts, stats.active_tokens


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], (0, 0)),
        (["login a"], (1, 1)),
        (["login a", "login a"], (1, 1)),
        (["login a", "login b"], (2, 2)),
        (["login a", "logout a"], (1, 0)),
        (["login a", "logout a", "login a"], (1, 1)),
        (["login a", "login b", "revoke a"], (2, 1)),
        (["login a", "revoke a", "login a"], (1, 1)),
        (["login a", "login other-cloud x"], (1, 1)),
    ],
)
def test_figures_follow_logins_logouts_and_revocations(store, admin, steps, expected):
    issued: dict[str, str] = {}
    for step in steps:
        verb, *args = step.split()
        if verb == "login" and len(args) == 2:
            store.issue("other-cloud", args[1], [], None)
        elif verb == "login":
            issued[args[0]] = store.issue("C", args[0], [], None)[0]
        elif verb == "logout":
            store.revoke(issued[args[0]])
        else:
            admin.revoke("C", args[0])
    assert figures(admin) == expected


def test_revoke_removes_the_token_record_and_the_account_record(store, admin, redis_db):
    token, _ = store.issue("C", "alice", [], None)
    lookup = tokens.lookup_id(tokens.verify(SECRET, token))
    assert admin.revoke("C", "alice") == 1
    assert not redis_db.exists(f"sso:token:{lookup}", "sso:account:C:alice")
    assert store.lookup(token) is None
    assert redis_db.smembers("sso:cloud:C:accounts") == {"alice"}  # still known
    assert redis_db.zcard("sso:cloud:C:tokens") == 0


def test_revoke_of_an_unknown_account_changes_nothing(admin, redis_db):
    assert admin.revoke("C", "nobody") is None
    assert redis_db.keys("*") == []


def test_an_account_from_before_the_per_cloud_keys_can_be_revoked(store, admin, redis_db):
    token, _ = store.issue("C", "old", [], None)
    redis_db.delete("sso:cloud:C:accounts", "sso:cloud:C:tokens")  # as before this release
    assert admin.revoke("C", "old") == 1
    assert store.lookup(token) is None
    assert figures(admin) == (1, 0)  # known from now on


def test_revoke_racing_logins_ends_with_no_token_or_a_new_one(store, admin):
    old, _ = store.issue("C", "racer", [], None)
    barrier, results = threading.Barrier(9), []

    def login():
        barrier.wait()
        results.append(store.issue("C", "racer", [], None)[0])

    threads = [threading.Thread(target=login) for _ in range(8)]
    for thread in threads:
        thread.start()
    barrier.wait()
    admin.revoke("C", "racer")
    for thread in threads:
        thread.join()
    assert store.lookup(old) is None
    current = [token for token in set(results) if store.lookup(token)]
    assert len(current) <= 1  # never two active tokens for one account
    assert figures(admin) == (1, len(current))


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(redis_server, fresh_provider) -> dict[str, str]:
    """The settings of the in-process apps (Redis database 1), for the command."""
    return app_env(redis_server, fresh_provider, LOG_LEVEL="WARNING")


def test_cli_revokes_every_token_of_the_account(cli_env, client, account):
    body = {key: account[key] for key in ("cloud_id", "username", "password")}
    token = client.post("/v1/tokens", json=body).json["token"]
    done = run_cli(
        "sso_service",
        cli_env,
        *("accounts", "revoke", "--cloud-id", account["cloud_id"]),
        *("--username", account["username"]),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"revoked": 1}
    introspected = client.post(
        "/v1/introspect", json={"token": token}, headers=basic(*INTROSPECTION_CLIENT)
    )
    assert introspected.json == {"active": False}
    assert client.post("/v1/tokens", json=body).json["token"] != token
    (entry,) = audit_lines(done.stderr)  # one line, though LOG_LEVEL is WARNING
    assert entry["client"].startswith("cli")
    assert entry | {"client": "cli"} == {
        "client": "cli",
        "action": "accounts.revoke",
        "cloud_id": account["cloud_id"],
        "username": account["username"],
        "result": "ok",
    }
    assert account["password"] not in done.stderr + done.stdout
    assert token.split(".")[0] not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("args", "env_change", "status", "says"),
    [
        (["--cloud-id", "TEST", "--username", "nobody"], {}, 1, "no such account"),
        (["--cloud-id", "..", "--username", "x"], {}, 2, "--cloud-id"),
        (["--cloud-id", "TEST", "--username", "a\tb"], {}, 2, "--username"),
        (["--cloud-id", "TEST"], {}, 2, "--username"),
        (["--cloud-id", "TEST", "--username", "x"], {"SSO_TOKEN_SECRET": "short"}, 2, "SSO_TOKEN"),
    ],
    ids=["unknown account", "bad cloud id", "bad username", "missing username", "bad settings"],
)
def test_cli_refusals(cli_env, args, env_change, status, says):
    done = run_cli("sso_service", {**cli_env, **env_change}, "accounts", "revoke", *args)
    assert done.returncode == status, (done.stdout, done.stderr)
    assert says in done.stderr
    assert done.stdout == ""
    if status == 1:
        (entry,) = audit_lines(done.stderr)
        assert entry["result"] == "not_found"
