#!/usr/bin/env bash
# Start a local PostgreSQL and Redis for development and tests, unless the configured ones
# already answer. Installs the Debian packages when they are missing (we run as root on Debian;
# PostgreSQL refuses to run as root, so the cluster is driven through pg_ctlcluster).
# Idempotent: a second run only checks and returns.
set -euo pipefail

REDIS_URL="${SSO_REDIS_URL:-redis://127.0.0.1:6379/0}"
DATABASE_URL="${CONTACTS_DATABASE_URL:-postgresql://contactsync:contactsync@127.0.0.1:5432/contactsync}"

log() { printf 'services: %s\n' "$*"; }

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing $* and no apt-get: install them yourself or point the URLs at running servers"
    exit 1
  fi
  log "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -f /tmp/.contactsync-apt-updated ]; then
    apt-get update -qq && touch /tmp/.contactsync-apt-updated
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- Redis -----------------------------------------------------------------------------------
redis_host_port() {
  # redis://[user:pass@]host:port/db -> "host port"
  local rest="${REDIS_URL#*://}"
  rest="${rest##*@}"
  rest="${rest%%/*}"
  local host="${rest%%:*}" port="6379"
  [ "$rest" != "$host" ] && port="${rest##*:}"
  echo "${host:-127.0.0.1} $port"
}

redis_answers() {
  read -r host port < <(redis_host_port)
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG
  else
    (exec 3<>"/dev/tcp/$host/$port" && printf 'PING\r\n' >&3 && timeout 1 head -c 5 <&3 | grep -q PONG) 2>/dev/null
  fi
}

ensure_redis() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server redis-tools
  command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
  if redis_answers; then
    log "redis answers at $REDIS_URL"
    return
  fi
  read -r host port < <(redis_host_port)
  log "starting redis-server on $host:$port"
  mkdir -p /var/lib/contactsync-redis
  redis-server --daemonize yes --bind "$host" --port "$port" \
    --dir /var/lib/contactsync-redis --logfile /var/lib/contactsync-redis/redis.log \
    --save 60 1000 --appendonly no
  for _ in $(seq 50); do redis_answers && return; sleep 0.1; done
  log "redis did not answer at $REDIS_URL"; exit 1
}

# --- PostgreSQL ------------------------------------------------------------------------------
pg_answers() {
  command -v psql >/dev/null 2>&1 && psql "$DATABASE_URL" -tAc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
  if pg_answers; then
    log "postgresql answers at ${DATABASE_URL%%@*}@..."
    return
  fi
  command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql postgresql-contrib
  local cluster
  cluster=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1" "$2}')
  if [ -z "$cluster" ]; then
    local ver
    ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
    log "creating cluster $ver main"
    pg_createcluster "$ver" main >/dev/null
    cluster="$ver main"
  fi
  # shellcheck disable=SC2086
  if ! pg_lsclusters -h | awk -v c="$cluster" '$1" "$2==c {print $4}' | grep -q online; then
    log "starting postgresql cluster $cluster"
    pg_ctlcluster $cluster start
  fi
  local user pass db
  user=$(python3 - "$DATABASE_URL" <<'PY'
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
print(u.unquote(p.username or "contactsync"), u.unquote(p.password or ""), p.path.lstrip("/") or "contactsync")
PY
)
  read -r user pass db <<<"$user"
  for _ in $(seq 100); do
    runuser -u postgres -- psql -tAc 'select 1' >/dev/null 2>&1 && break
    sleep 0.1
  done
  # CREATEDB lets the test suite make a throwaway database per run.
  runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
    CREATE ROLE "$user" LOGIN CREATEDB PASSWORD '$pass';
  ELSE
    ALTER ROLE "$user" LOGIN CREATEDB PASSWORD '$pass';
  END IF;
END
\$\$;
SQL
  if ! runuser -u postgres -- psql -tAc "select 1 from pg_database where datname='$db'" | grep -q 1; then
    runuser -u postgres -- createdb -O "$user" "$db"
  fi
  pg_answers || { log "postgresql does not answer at $DATABASE_URL"; exit 1; }
  log "postgresql ready"
}

# --- PgBouncer -------------------------------------------------------------------------------
# Installed only (also when Redis and PostgreSQL already answer): the tests start their own
# pgbouncer in front of their own database (tests/support/pgbouncer.py). Debian puts it in
# /usr/sbin, which a non-root PATH may lack.
ensure_pgbouncer() {
  if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
    return
  fi
  apt_install pgbouncer
}

ensure_redis
ensure_postgres
ensure_pgbouncer

# --- Chromium (browser tests) ----------------------------------------------------------------
# Headless Chromium and its WebDriver for tests/browser (the reference web client). Installed
# only: the tests start their own browser. CONTACTSYNC_SKIP_BROWSER=1 skips this on a machine
# that only runs `make run`.
ensure_chromium() {
  if [ "${CONTACTSYNC_SKIP_BROWSER:-0}" = "1" ]; then
    return
  fi
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    return
  fi
  apt_install chromium chromium-driver
}

ensure_chromium
