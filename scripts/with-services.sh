#!/usr/bin/env bash
# Run a command with PostgreSQL and Redis available to the tests.
#
# Uses TEST_DATABASE_URL / TEST_REDIS_URL when they answer (default: the local servers on
# 127.0.0.1:5432 and :6379). Where nothing listens, starts throwaway instances from the installed
# binaries in a temporary directory, points the variables at them, and stops them afterwards.
set -euo pipefail

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
tmp=""
cleanup() {
  if [ -n "$tmp" ]; then
    [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
    if [ -d "$tmp/pg" ]; then as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1 || true; fi
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_ok() { psql "$TEST_DATABASE_URL" -Atc 'select 1' >/dev/null 2>&1; }
redis_ok() { redis-cli -u "$TEST_REDIS_URL" ping 2>/dev/null | grep -q PONG; }

if ! pg_ok; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
    echo "PostgreSQL is not reachable at $TEST_DATABASE_URL and no server is installed." >&2
    echo "Install one (Debian: apt-get install postgresql) or set TEST_DATABASE_URL." >&2
    exit 1
  fi
  tmp=${tmp:-$(mktemp -d /tmp/coach-services.XXXXXX)}
  chmod 755 "$tmp"
  mkdir -p "$tmp/pg" && [ "$(id -u)" = 0 ] && chown postgres "$tmp/pg"
  port=$(free_port)
  echo "starting a throwaway PostgreSQL on 127.0.0.1:$port" >&2
  as_pg "$pgbin/initdb" -D "$tmp/pg" -U postgres --auth=trust >/dev/null
  as_pg "$pgbin/pg_ctl" -D "$tmp/pg" -o "-p $port -k $tmp/pg -c listen_addresses=127.0.0.1" -l "$tmp/pg/log" -w start >/dev/null
  as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U postgres test
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/test"
fi

if ! redis_ok; then
  if ! command -v redis-server >/dev/null; then
    echo "Redis is not reachable at $TEST_REDIS_URL and redis-server is not installed." >&2
    echo "Install it (Debian: apt-get install redis-server) or set TEST_REDIS_URL." >&2
    exit 1
  fi
  tmp=${tmp:-$(mktemp -d /tmp/coach-services.XXXXXX)}
  port=$(free_port)
  echo "starting a throwaway Redis on 127.0.0.1:$port" >&2
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$tmp" \
    --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"
  export TEST_REDIS_URL="redis://127.0.0.1:$port"
  for _ in $(seq 50); do redis_ok && break; sleep 0.1; done
fi

"$@"
