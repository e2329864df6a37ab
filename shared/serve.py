"""The `serve` command both services share: run a WSGI factory under gunicorn.

`python -m sso_service serve --bind HOST:PORT --workers N [--certfile F --keyfile F]
[--worker-class gthread|gevent|sync]`. The app is created in each worker (not preloaded) so
every worker gets its own connection pools; its modules are imported once, in the master,
before the workers are forked, so the workers share those pages with the master (copy on
write) instead of each holding its own ≈ 35 to 50 MiB copy of Flask, SQLAlchemy, phonenumbers
and the rest.

Worker classes: `gthread` (a thread per request in flight, `--threads` of them) suits short
requests; `gevent` (a greenlet per connection, up to `--worker-connections`) lets one worker
hold many long-lived connections, such as the Contacts service's change-notification streams.
An app learns what its worker can hold from `worker_capacity()`, and that the worker is
shutting down from `worker_stopping()`, so long-lived answers can stay below the one and end
at the other.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import tempfile

WORKER_CLASSES = ("gthread", "gevent", "sync")

# Set in each worker process before the app is created (see run_gunicorn).
_worker_capacity: int | None = None
_worker = None


def worker_capacity() -> int | None:
    """How many requests this worker process can serve at once (gthread: its threads; gevent:
    its worker connections; sync: 1); None when not running under `serve`."""
    return _worker_capacity


def worker_stopping() -> bool:
    """Whether this gunicorn worker has been told to stop (its long-lived answers should end
    now, so the worker can exit within the graceful timeout)."""
    return _worker is not None and not _worker.alive


def add_serve_arguments(
    parser: argparse.ArgumentParser,
    default_bind: str,
    default_threads: int = 4,
    default_worker_class: str = "gthread",
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
    parser.add_argument(
        "--worker-class",
        choices=WORKER_CLASSES,
        default=default_worker_class,
        help=f"gunicorn worker class (default {default_worker_class}; gthread with --threads 1"
        " is sync)",
    )
    parser.add_argument(
        "--worker-connections",
        type=int,
        default=2000,
        help="connections one gevent or gthread worker holds at once (default 2000)",
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


def _import_before_fork(modules: tuple[str, ...]) -> None:
    """Import the app's modules (and so what they import) in the master; nothing is created
    or connected here. `gc.freeze()` then moves every object that exists now out of the
    collector's reach: a worker's collections would otherwise write to each of them (the
    collector's bookkeeping lives in the object's header) and so copy every shared page."""
    import gc

    for module in modules:
        importlib.import_module(module)
    gc.collect()
    gc.freeze()


def run_gunicorn(factory: str, args: argparse.Namespace, preload: tuple[str, ...] = ()) -> None:
    """Run `module:factory` under gunicorn with the parsed serve arguments; blocks. `preload`:
    modules to import in the master (see _import_before_fork); the factory's own module is
    imported in each worker as before."""
    if bool(args.certfile) != bool(args.keyfile):
        raise SystemExit("--certfile and --keyfile go together")
    worker_class = getattr(args, "worker_class", "gthread")
    if worker_class == "gthread" and args.threads <= 1:
        worker_class = "sync"
    if worker_class == "gevent":
        try:
            import gevent  # noqa: F401
        except ImportError:
            raise SystemExit("--worker-class gevent needs the gevent package") from None
    connections = getattr(args, "worker_connections", 2000)
    # gthread also stops reading new requests (even on kept-alive connections) once it holds
    # worker_connections connections, so both bound what it can serve.
    capacity = {
        "gthread": min(args.threads, connections),
        "gevent": connections,
        "sync": 1,
    }[worker_class]
    owned_metrics_dir = _prepare_metrics_dir()

    from gunicorn.app.base import BaseApplication

    module_name, _, attr = factory.partition(":")

    def child_exit(server, worker):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

    def post_worker_init(worker):
        global _worker
        _worker = worker
        use_json_error_pages()

    options = {
        "bind": args.bind,
        "workers": args.workers,
        "threads": args.threads,
        "timeout": args.timeout,
        "graceful_timeout": 20,
        "keepalive": 75,
        "worker_class": worker_class,
        "worker_connections": connections,
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
            # In the worker process, before the app exists: the app reads it at creation.
            global _worker_capacity
            _worker_capacity = capacity
            return getattr(importlib.import_module(module_name), attr)()

    _import_before_fork(preload)
    master = os.getpid()
    try:
        _App().run()
    finally:
        # Workers are forked inside run() and leave it by SystemExit (a TERM, a HUP reload, a
        # timeout, max-requests): this finally runs in them too, and removing the directory
        # there would make every later worker fail on its first metric. Only the master owns it.
        if owned_metrics_dir and os.getpid() == master:
            shutil.rmtree(owned_metrics_dir, ignore_errors=True)
