#!/usr/bin/env bash
# `make binaries`: single-file Linux binaries dist/sso-server and dist/contacts-server.
#
#   bash deploy/binaries/build.sh                  # both
#   bash deploy/binaries/build.sh sso-server       # one
#
# Each binary is PyInstaller --onefile: the interpreter, the service, gunicorn (its worker
# classes are loaded by name, so they are listed explicitly) and, for Contacts, the Alembic
# migrations as data at contacts_service/migrations — the same place relative to the package as
# in a source checkout, so the service finds them the same way. Build on the oldest glibc you
# deploy to: the binary needs a glibc at least as new as the build machine's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
DIST="${DIST:-$ROOT/dist}"
cd "$ROOT"
# A private work directory per run, so concurrent builds cannot mix their intermediate files.
mkdir -p "$ROOT/build" "$DIST"
WORK="$(mktemp -d "$ROOT/build/pyinstaller.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

common=(
    --noconfirm --clean --onefile --log-level WARN
    --distpath "$WORK/dist" --workpath "$WORK" --specpath "$WORK"
    --paths "$ROOT"
    # Loaded by name from gunicorn's configuration, invisible to the import analysis.
    --hidden-import gunicorn.glogging
    --hidden-import gunicorn.workers.sync
    --hidden-import gunicorn.workers.gthread
    # Region metadata is imported lazily by region code.
    --collect-submodules phonenumbers.data
    --collect-submodules phonenumbers.shortdata
    # `--version` reads the installed distribution's metadata.
    --copy-metadata contact-sync
    # Development-only packages that optional imports would otherwise drag in.
    --exclude-module tkinter --exclude-module pytest --exclude-module hypothesis
    --exclude-module schemathesis --exclude-module IPython
    --exclude-module eventlet --exclude-module tornado
)

build_sso() {
    "$PYTHON" -m PyInstaller "${common[@]}" --name sso-server --exclude-module gevent \
        "$ROOT/deploy/binaries/sso_server.py"
}

build_contacts() {
    "$PYTHON" -m PyInstaller "${common[@]}" --name contacts-server \
        --add-data "$ROOT/contacts_service/migrations:contacts_service/migrations" \
        --hidden-import logging.config \
        --hidden-import gunicorn.workers.ggevent \
        --hidden-import sqlalchemy.dialects.postgresql.psycopg2 \
        --collect-submodules alembic.ddl \
        --collect-submodules alembic.operations \
        "$ROOT/deploy/binaries/contacts_server.py"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sso-server contacts-server)
for target in "${targets[@]}"; do
    case "$target" in
        sso-server) build_sso ;;
        contacts-server) build_contacts ;;
        *) echo "unknown target: $target (sso-server, contacts-server)" >&2; exit 2 ;;
    esac
    # Rename into place: a reader never sees a half-written file. (A running one-file binary
    # re-reads its own file for lazy imports, so stop it before replacing it: see
    # docs/deploying.md.)
    mv -f "$WORK/dist/$target" "$DIST/$target"
    echo "built $DIST/$target ($(du -h "$DIST/$target" | cut -f1))"
done
