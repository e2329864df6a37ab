"""HTTP Basic client authentication (shared/client_auth.py), the in-process throttle of
failures, client lists from settings, and the `accounts`-style sub-commands of shared/cli.py."""

from __future__ import annotations

import pytest
from flask import Flask, jsonify

from shared.cli import add_account_arguments, run_cli
from shared.client_auth import MemoryThrottle, address_key, basic_client
from shared.config import ConfigError, env_clients
from shared.errors import ApiError, register_error_handlers
from tests.support.admin import basic

CLIENTS = {"ops": "s3cret", "colon": "a:b:c", "ünï": "çødé"}


class Clock:
    def __init__(self, now: float = 1_000_040.0):  # 20 s into a one-minute window
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_app(throttle) -> Flask:
    app = Flask(__name__)
    register_error_handlers(app)

    @app.get("/who")
    def who():
        return jsonify(client=basic_client(CLIENTS, throttle, realm="test"))

    return app


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("ops", "s3cret"), ("colon", "a:b:c"), ("ünï", "çødé")],
)
def test_the_right_credentials_name_the_client(client_id, secret):
    client = make_app(MemoryThrottle(3)).test_client()
    response = client.get("/who", headers=basic(client_id, secret))
    assert response.status_code == 200
    assert response.json == {"client": client_id}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("ops", "wrong"),
        basic("ops", ""),
        basic("ops", "s3cret "),
        basic("OPS", "s3cret"),
        basic("nobody", "s3cret"),
        basic("colon", "a"),
        {"Authorization": "Bearer s3cret"},
        {"Authorization": "Basic"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest username=ops"},
    ],
)
def test_anything_else_is_401_invalid_client_with_a_basic_challenge(headers):
    client = make_app(MemoryThrottle(100)).test_client()
    response = client.get("/who", headers=headers)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="test", charset="UTF-8"'


def test_no_configured_client_means_everyone_is_refused():
    app = Flask(__name__)
    register_error_handlers(app)

    @app.get("/who")
    def who():
        return jsonify(client=basic_client({}, MemoryThrottle(100), realm="x"))

    for headers in ({}, basic("", ""), basic("ops", "s3cret")):
        assert app.test_client().get("/who", headers=headers).status_code == 401


def test_failures_are_throttled_per_address_and_the_right_secret_always_passes():
    clock = Clock()
    client = make_app(MemoryThrottle(2, clock=clock)).test_client()
    wrong = basic("ops", "guess")
    assert [client.get("/who", headers=wrong).status_code for _ in range(3)] == [401, 401, 429]
    limited = client.get("/who", headers=wrong)
    assert limited.json["error"] == "too_many_attempts"
    assert limited.headers["Retry-After"] == "40"  # the window ends at the next full minute
    assert client.get("/who", headers=basic("ops", "s3cret")).status_code == 200
    other = client.get("/who", headers=wrong, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert other.status_code == 401
    clock.now += 40  # a new window
    assert client.get("/who", headers=wrong).status_code == 401


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("192.0.2.1", "192.0.2.1", True),
        ("192.0.2.1", "192.0.2.2", False),
        ("2001:db8::1", "2001:db8::ffff", True),  # one /64
        ("2001:db8::1", "2001:db8:0:1::1", False),
        ("::ffff:192.0.2.1", "192.0.2.1", True),
    ],
)
def test_memory_throttle_counts_per_subscriber(first, second, shared):
    throttle = MemoryThrottle(1, clock=Clock())
    throttle.record_failure(first)
    if shared:
        with pytest.raises(ApiError) as refused:
            throttle.check(second)
        assert refused.value.status == 429
    else:
        throttle.check(second)


def test_memory_throttle_tracks_a_bounded_number_of_addresses():
    throttle = MemoryThrottle(1, max_addresses=2, clock=Clock())
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        throttle.record_failure(address)
    assert len(throttle._counts) == 2
    throttle.check("192.0.2.3")  # not counted: the table was full
    with pytest.raises(ApiError):
        throttle.check("192.0.2.1")


@pytest.mark.parametrize(
    ("address", "key"),
    [("203.0.113.9", "203.0.113.9"), ("2001:db8::1%eth0", "2001:db8::/64"), ("unknown", "unknown")],
)
def test_address_key(address, key):
    assert address_key(address) == key


@pytest.mark.parametrize(
    ("raw", "clients"),
    [
        (None, {}),
        ("", {}),
        ("  ", {}),
        ("ops:secret", {"ops": "secret"}),
        ("ops:se:cret, audit:x ,", {"ops": "se:cret", "audit": "x"}),
    ],
)
def test_env_clients(raw, clients):
    environ = {} if raw is None else {"X_CLIENTS": raw}
    assert env_clients("X_CLIENTS", environ) == clients


@pytest.mark.parametrize("raw", ["nosecret", ":secret", "ops:", "ops:x,broken"])
def test_env_clients_refuses_entries_without_id_or_secret(raw):
    with pytest.raises(ConfigError, match="X_CLIENTS"):
        env_clients("X_CLIENTS", {"X_CLIENTS": raw})


def test_extra_commands_with_and_without_arguments(capsys):
    seen = []

    def add(parser):
        actions = parser.add_subparsers(dest="action", required=True)
        add_account_arguments(actions.add_parser("revoke"))

    def accounts(args):
        seen.append((args.action, args.cloud_id, args.username))
        return 3

    extra = {"plain": ("no arguments", lambda: 5), "accounts": ("with arguments", accounts, add)}

    def cli(*argv):
        return run_cli("prog", "x:y", "127.0.0.1:1", list, extra_commands=extra, argv=list(argv))

    assert cli("plain") == 5
    assert cli("accounts", "revoke", "--cloud-id", "C", "--username", "u") == 3
    assert seen == [("revoke", "C", "u")]
    with pytest.raises(SystemExit):
        cli("accounts", "revoke", "--cloud-id", "C")
    assert "--username" in capsys.readouterr().err
