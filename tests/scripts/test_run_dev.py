"""`make run` (scripts/run_dev.py): everything starts, the printed curl login works as printed,
and SIGTERM stops every child."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.servers import ROOT, free_port, wait_for


@pytest.fixture
def run_dev(redis_server, postgres_database):
    ports = {"provider": free_port(), "sso": free_port(), "contacts": free_port()}
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SSO_", "CONTACTS_", "PROMETHEUS"))
    }
    env["SSO_REDIS_URL"] = redis_server.url.rsplit("/", 1)[0] + "/2"
    env["CONTACTS_DATABASE_URL"] = postgres_database.url
    output = Path(tempfile.mkstemp(prefix="cs-run-dev-", suffix=".log")[1])
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable, str(ROOT / "scripts" / "run_dev.py"),
                "--provider-port", str(ports["provider"]),
                "--sso-port", str(ports["sso"]),
                "--contacts-port", str(ports["contacts"]),
            ],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    yield process, output
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_printed_login_works_and_sigterm_stops_all(run_dev):
    process, output = run_dev

    def printed_login():
        lines = output.read_text(errors="replace").splitlines()
        return next(line.strip() for line in lines if line.strip().startswith("curl -s -X POST"))

    wait_for(printed_login, timeout=120, what="the printed curl login")
    answer = subprocess.run(  # noqa: S602 - the point is to run it exactly as printed
        printed_login(), shell=True, capture_output=True, text=True, timeout=30, check=True
    )
    body = json.loads(answer.stdout)
    assert body["token_type"] == "Bearer"
    assert body["account"]["username"] == "alice"

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    children = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
    ).stdout.split()
    assert children == []
