"""The short variant of `make load` (CI): real processes under load for ~15 s, zero 5xx and
every account's books exactly as its clients believe."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.servers import ROOT


def test_short_load_run_has_no_5xx_and_loses_nothing(tmp_path):
    report = tmp_path / "load.json"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "load" / "run.py"), "--short", "--json", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert report.exists(), completed.stdout + completed.stderr
    result = json.loads(report.read_text())
    load, check = result["load"], result["consistency"]

    assert load["errors_5xx"] == 0, load["anomaly_examples"]
    assert load["connection_errors"] == 0, load["anomaly_examples"]
    assert load["anomalies"] == {}, load["anomaly_examples"]
    # Every account whose device got registered is checked (on a slow runner the 15 s may end
    # before the last ones are), and none could not be read back.
    assert check["accounts_checked"] > 0
    assert check.get("unverifiable_accounts", 0) == 0
    assert check["contacts_checked"] > 0
    assert (check["lost"], check["duplicated"], check["changed"], check["unexpected"]) == (
        0, 0, 0, 0,
    )  # fmt: skip
    for endpoint in ("POST /v1/tokens", "PATCH contacts", "GET contacts", "GET checksums"):
        assert load["endpoints"][endpoint]["requests"] > 0, endpoint
    assert result["introspection_cost"]["ratio"] > 0
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
