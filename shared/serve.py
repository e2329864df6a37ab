"""The `serve` command both services share: run a WSGI factory under gunicorn.

`python -m sso_service serve --bind HOST:PORT --workers N [--certfile F --keyfile F]`.
The app is created in each worker (not preloaded) so every worker gets its own connection
pools.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import tempfile


def add_serve_arguments(
    parser: argparse.ArgumentParser, default_bind: str, default_threads: int = 4
) -> None:
    parser.add_argument("--bind", default=default_bind, help=f"HOST:PORT (default {default_bind})")
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")), help="workers"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads,
        help=f"threads per worker (>1 keeps HTTP keep-alive; default {default_threads})",
    )
    parser.add_argument("--timeout", type=int, default=60, help="worker timeout in seconds")
    parser.add_argument("--certfile", help="TLS certificate (PEM) to serve HTTPS")
    parser.add_argument("--keyfile", help="TLS private key (PEM)")
    parser.add_argument("--access-log", action="store_true", help="gunicorn access log too")


def _prepare_metrics_dir() -> str | None:
    """Point prometheus-client at a per-run directory before any metric is imported."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    path = tempfile.mkdtemp(prefix="contactsync-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def use_json_error_pages() -> None:
    """Make gunicorn's own error answers (a request line or header it refuses before the app
    sees the request: 400, 414, 431) use the one JSON error shape instead of an HTML page.

    gunicorn writes those through `gunicorn.util.write_error` with no hook of its own, so the
    function is replaced in each worker process.
    """
    import gunicorn.util

    from shared.errors import http_error_code

    def write_json_error(sock, status_int, reason, mesg):
        error, message = http_error_code(status_int)
        body = json.dumps({"error": error, "message": message}).encode()
        head = (
            f"HTTP/1.1 {status_int} {reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        gunicorn.util.write_nonblock(sock, head + body)

    gunicorn.util.write_error = write_json_error


def run_gunicorn(factory: str, args: argparse.Namespace) -> None:
    """Run `module:factory` under gunicorn with the parsed serve arguments; blocks."""
    if bool(args.certfile) != bool(args.keyfile):
        raise SystemExit("--certfile and --keyfile go together")
    owned_metrics_dir = _prepare_metrics_dir()

    from gunicorn.app.base import BaseApplication

    module_name, _, attr = factory.partition(":")

    def child_exit(server, worker):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

    def post_worker_init(worker):
        use_json_error_pages()

    options = {
        "bind": args.bind,
        "workers": args.workers,
        "threads": args.threads,
        "timeout": args.timeout,
        "graceful_timeout": 20,
        "keepalive": 75,
        "worker_class": "gthread" if args.threads > 1 else "sync",
        "accesslog": "-" if args.access_log else None,
        "errorlog": "-",
        "child_exit": child_exit,
        "post_worker_init": post_worker_init,
        "certfile": args.certfile,
        "keyfile": args.keyfile,
        # A login body is tiny, a 50,000-contact upload is not: the apps enforce their own
        # body limits, gunicorn only bounds header abuse.
        "limit_request_field_size": 16384,
        # gunicorn's management socket defaults to ~/.gunicorn/gunicorn.ctl: shared by both
        # services on one host, and unwritable under read-only roots and systemd DynamicUser.
        "control_socket_disable": True,
    }

    class _App(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                if value is not None:
                    self.cfg.set(key, value)

        def load(self):
            return getattr(importlib.import_module(module_name), attr)()

    try:
        _App().run()
    finally:
        if owned_metrics_dir:
            shutil.rmtree(owned_metrics_dir, ignore_errors=True)
