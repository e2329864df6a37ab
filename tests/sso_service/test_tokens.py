"""The token format and its HMAC check."""

from __future__ import annotations

import base64
import re

import pytest

from sso_service import tokens

SECRET = "a" * 64
OTHER = "b" * 64


def test_token_is_key_dot_mac_with_256_random_bits():
    key = tokens.new_key()
    token = tokens.make_token(SECRET, key)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}", token)
    assert len(base64.urlsafe_b64decode(key + "=")) == 32
    assert token.split(".")[0] == key


def test_keys_are_unique():
    assert len({tokens.new_key() for _ in range(1000)}) == 1000


def test_verify_returns_the_key_of_a_genuine_token():
    key = tokens.new_key()
    assert tokens.verify(SECRET, tokens.make_token(SECRET, key)) == key


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: _flip(t, 0),
        lambda t: _flip(t, len(t) - 1),
        lambda t: t.split(".")[0],
        lambda t: t.replace(".", ""),
        lambda t: t.split(".")[0] + "." + tokens.mac(OTHER, t.split(".")[0]),
        lambda t: "",
        lambda t: " " + t,
        lambda t: t + "\n",
        lambda t: t.replace(".", ".."),
        lambda t: "x" * 1000,
    ],
)
def test_verify_refuses_forged_or_damaged_tokens(mutate):
    token = tokens.make_token(SECRET, tokens.new_key())
    assert tokens.verify(SECRET, mutate(token)) is None


@pytest.mark.parametrize("value", [None, 123, ["a"], {"token": "x"}, b"bytes"])
def test_verify_refuses_non_strings(value):
    assert tokens.verify(SECRET, value) is None


def test_a_token_made_with_another_secret_fails():
    assert tokens.verify(SECRET, tokens.make_token(OTHER, tokens.new_key())) is None


def test_lookup_id_is_sha256_hex_and_not_the_key():
    key = tokens.new_key()
    lookup = tokens.lookup_id(key)
    assert re.fullmatch(r"[0-9a-f]{64}", lookup)
    assert key not in lookup
