"""shared.config: reading settings with explicit casts."""

from __future__ import annotations

import pytest

from shared.config import (
    ConfigError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_log_level,
    env_origins,
    env_region,
    env_str,
)


def test_env_str():
    assert env_str("A", environ={"A": " x "}) == "x"
    assert env_str("A", "d", environ={}) == "d"
    assert env_str("A", None, environ={"A": "   "}) is None
    with pytest.raises(ConfigError, match="A is required"):
        env_str("A", environ={})


def test_env_str_reads_os_environ(monkeypatch):
    monkeypatch.setenv("CS_TEST_VALUE", "from-env")
    assert env_str("CS_TEST_VALUE") == "from-env"


@pytest.mark.parametrize(
    ("raw", "kwargs", "expected"),
    [("5", {}, 5), ("-3", {}, -3), (None, {"default": 7}, 7), ("10", {"maximum": 10}, 10)],
)
def test_env_int(raw, kwargs, expected):
    environ = {} if raw is None else {"N": raw}
    assert env_int("N", environ=environ, **kwargs) == expected


@pytest.mark.parametrize(
    ("raw", "kwargs", "match"),
    [
        ("five", {}, "whole number"),
        ("1.5", {}, "whole number"),
        ("0", {"minimum": 1}, "at least 1"),
        ("11", {"maximum": 10}, "at most 10"),
        (None, {}, "required"),
    ],
)
def test_env_int_refusals(raw, kwargs, match):
    environ = {} if raw is None else {"N": raw}
    with pytest.raises(ConfigError, match=match):
        env_int("N", environ=environ, **kwargs)


def test_env_float():
    assert env_float("F", environ={"F": "1.5"}) == 1.5
    assert env_float("F", 2.0, environ={}) == 2.0
    with pytest.raises(ConfigError, match="number"):
        env_float("F", environ={"F": "fast"})
    with pytest.raises(ConfigError, match="at least"):
        env_float("F", environ={"F": "-1"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        (None, False),
    ],
)
def test_env_bool(raw, expected):
    assert env_bool("B", environ={} if raw is None else {"B": raw}) is expected


def test_env_bool_refuses_other_words():
    with pytest.raises(ConfigError, match="B must be one of"):
        env_bool("B", environ={"B": "maybe"})


def test_env_list():
    assert env_list("L", environ={"L": "a, b,,c "}) == ["a", "b", "c"]
    assert env_list("L", ["x"], environ={}) == ["x"]
    assert env_list("L", environ={}) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ("*", ["*"]),
        ("https://app.example.com, http://localhost:8080", ["https://app.example.com", "http://localhost:8080"]),
        ("http://[::1]:8080", ["http://[::1]:8080"]),
    ],
)  # fmt: skip
def test_origins(raw, expected):
    assert env_origins("CORS_ORIGINS", {"CORS_ORIGINS": raw}) == expected


@pytest.mark.parametrize(
    "raw",
    ["app.example.com", "https://app.example.com/path", "https://(a|b).example.com x", "ftp://x"],
)
def test_entries_that_are_not_origins_are_refused(raw):
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        env_origins("CORS_ORIGINS", {"CORS_ORIGINS": raw})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "INFO"),
        ("", "INFO"),
        ("DEBUG", "DEBUG"),
        ("info", "INFO"),
        (" Warning ", "WARNING"),
        ("error", "ERROR"),
        ("CRITICAL", "CRITICAL"),
    ],
)
def test_env_log_level(raw, expected):
    assert env_log_level({} if raw is None else {"LOG_LEVEL": raw}) == expected


@pytest.mark.parametrize("raw", ["LOUD", "WARN", "TRACE", "10", "INFO,DEBUG"])
def test_env_log_level_refuses_other_levels(raw):
    with pytest.raises(
        ConfigError, match="LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"
    ):
        env_log_level({"LOG_LEVEL": raw})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("US", "US"),
        ("gb", "GB"),
        (" de ", "DE"),
        ("Jp", "JP"),
    ],
)
def test_env_region(raw, expected):
    assert env_region("R", {} if raw is None else {"R": raw}) == expected


@pytest.mark.parametrize("raw", ["XX", "ZZ", "USA", "U", "001", "U5", "UK", "EU"])
def test_env_region_refuses_codes_phonenumbers_does_not_know(raw):
    with pytest.raises(ConfigError, match=r"^R must be a two-letter region code like US or GB$"):
        env_region("R", {"R": raw})
