"""A no-op Flask app served like the real services, the baseline of the introspection cost.

    python -m tests.load.noop_app serve --bind 127.0.0.1:9000 --workers 2

`GET /v1/devices` answers a constant `{"devices": []}` without authentication, a database or
the SSO; everything else about serving it (gunicorn, workers, threads, keep-alive) is what
`python -m contacts_service serve` uses, so the ratio of the two throughputs is the price of
what Contacts does per request: introspection at the SSO plus its own database work.
"""

from __future__ import annotations

import sys

from flask import Flask, jsonify


def create_app() -> Flask:
    app = Flask("noop")

    @app.get("/healthz")
    def healthz():
        """Liveness."""
        return jsonify(status="ok")

    @app.get("/v1/devices")
    def list_devices():
        """A constant device list."""
        return jsonify(devices=[])

    return app


def main(argv: list[str] | None = None) -> int:
    from shared.cli import run_cli

    return run_cli(
        prog="noop",
        factory="tests.load.noop_app:create_app",
        default_bind="127.0.0.1:9000",
        check_config=list,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
