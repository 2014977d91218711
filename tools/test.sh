#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the project needs, starts the database servers and
# the brokers, sets up the authentication rule the auth-failure tests need, runs pytest, then builds the docs
# with -W.
# Usage: bash tools/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}

log() { printf '\n== %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

log "Debian packages"
command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-contrib
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
command -v psql >/dev/null || apt_install postgresql-client
command -v mariadb >/dev/null || apt_install mariadb-client
command -v redis-server >/dev/null || apt_install redis-server
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || apt_install rabbitmq-server

log "Python virtualenv"
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
# The venv's own pip (the one `python3 -m venv` ships) resolves at once with the pinned versions of
# constraints.txt (regenerate it with tools/lock.sh after changing dependencies).
.venv/bin/python -m pip install -q -c constraints.txt -e ".[platform,test,docs]" 2>&1 \
  | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import previsio_sdk, fastapi, pyarrow, psycopg, pymysql, pytest, responses, sphinx, ruff"

log "PostgreSQL"
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 60); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432

# The local PostgreSQL trusts every login; these roles must give their password (scram), so that a wrong
# password is really refused and the authentication-failure tests prove something. previsio_special is
# created by tests/integration/test_security_sql.py with a password full of characters URLs encode.
PGVER=$(ls /etc/postgresql | sort -V | tail -1)
HBA=/etc/postgresql/$PGVER/main/pg_hba.conf
for ROLE in previsio_scram previsio_special; do
  RULE="host all $ROLE 127.0.0.1/32 scram-sha-256"
  if ! as_root grep -qF "$RULE" "$HBA"; then
    as_root sed -i "1i $RULE" "$HBA"
  fi
done
psql -h 127.0.0.1 -U postgres -d postgres -qtA -v ON_ERROR_STOP=1 <<'SQL'
SET password_encryption = 'scram-sha-256';
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'previsio_scram') THEN
    CREATE ROLE previsio_scram LOGIN PASSWORD 'scram-Secret-4711';
  ELSE
    ALTER ROLE previsio_scram LOGIN PASSWORD 'scram-Secret-4711';
  END IF;
END $$;
SELECT pg_reload_conf();
SQL

log "MariaDB"
if ! mariadb -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1' >/dev/null 2>&1; then
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 60); do mariadb -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
fi
mariadb -h 127.0.0.1 -P 3306 -uroot -e 'SELECT VERSION()'

# The brokers of the cluster tests (tests/integration/test_cluster.py): Redis and RabbitMQ on their ports.
log "Redis"
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping

log "RabbitMQ"
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! rabbit_up; then
  as_root rabbitmq-server -detached
  for _ in $(seq 90); do rabbit_up && break; sleep 1; done
fi
rabbit_up && echo "RabbitMQ answers on 127.0.0.1:5672"

log "lint (ruff)"
.venv/bin/ruff check previsio_sdk tests benchmarks tools
.venv/bin/ruff format --check previsio_sdk tests benchmarks tools

log "pytest"
# Exit code 5 (no tests collected) is a failure like any other non-zero code.
.venv/bin/python -m pytest "$@"

log "docs (sphinx-build -W)"
rm -rf docs/_build
.venv/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

log "all green"
