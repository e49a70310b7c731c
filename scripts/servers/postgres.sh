# PostgreSQL for the tests (sourced by scripts/servers.sh): Debian's server, a cluster
# made by initdb (password auth over TCP) on 127.0.0.1:15432, under .servers/postgres/,
# or as root in a postgres-owned folder in /tmp (see _pg_home).
# The server also offers TLS (a throwaway CA); the role `cache_tls` may log in over TLS only.
#   CACHE_TEST_POSTGRES_URL       postgres://postgres:<random password>@127.0.0.1:15432/cache_test?sslmode=disable
#   CACHE_TEST_POSTGRES_TLS_URL   the same as cache_tls, sslmode=require (a plain login is refused)
#   CACHE_TEST_POSTGRES_TLS_CA    the CA certificate (PEM) that signed the server's
#   CACHE_TEST_POSTGRES_BIN_DIR   where initdb, pg_ctl and postgres live (not on PATH in Debian)

POSTGRES_PORT=15432

postgres_install() { _need_apt postgresql openssl; }

_pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [[ -x "$d/initdb" ]] && { echo "$d"; return; }; done
  _log "no PostgreSQL server binaries under /usr/lib/postgresql"; return 1
}

# Run a command as the postgres user (the server refuses to run as root).
_as_postgres() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# Where the cluster lives. As root the server runs as `postgres`, which may not be able
# to reach a checkout (under a mode-700 folder, say): then the cluster gets a folder of
# its own in /tmp, owned by postgres and named after this checkout's .servers/.
_pg_home() {
  if [[ $(id -u) -eq 0 ]]; then
    echo "/tmp/cache-test-postgres-$(printf %s "$SERVERS_DIR" | sha256sum | cut -c1-12)"
  else
    echo "$SERVERS_DIR/postgres"
  fi
}

postgres_start() {
  local bin dir
  bin=$(_pg_bin) || return 1
  dir=$(_pg_home)
  mkdir -p "$dir" "$SERVERS_DIR/postgres"
  if [[ $(id -u) -eq 0 ]]; then chown postgres "$dir"; chmod 700 "$dir"; fi
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/password"
    [[ $(id -u) -eq 0 ]] && chown postgres "$dir/password"
    chmod 600 "$dir/password"
    _as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 --pwfile="$dir/password" >"$dir/initdb.log" 2>&1 || {
      _log "initdb failed:"; tail -5 "$dir/initdb.log" >&2; return 1; }
    # First matching line wins: cache_tls over plain TCP is refused.
    sed -i '1i hostnossl all cache_tls all reject' "$dir/data/pg_hba.conf"
  fi
  _certs "$dir/certs"
  [[ $(id -u) -eq 0 ]] && chown -R postgres "$dir/certs"
  if ! _as_postgres "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    _port_free "$POSTGRES_PORT" || { _log "port $POSTGRES_PORT is taken by another process"; return 1; }
    _as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
      -o "-h 127.0.0.1 -p $POSTGRES_PORT -k $dir -c fsync=off -c max_connections=200 -c ssl=on -c ssl_cert_file=$dir/certs/server.pem -c ssl_key_file=$dir/certs/server.key" start >/dev/null || {
      _log "postgres did not start:"; tail -5 "$dir/log" >&2; return 1; }
  fi
  head -1 "$dir/data/postmaster.pid" >"$SERVERS_DIR/postgres/pid"
  _as_postgres psql -h "$dir" -p "$POSTGRES_PORT" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'cache_test'" | grep -q 1 ||
    _as_postgres "$bin/createdb" -h "$dir" -p "$POSTGRES_PORT" -U postgres cache_test
  _as_postgres psql -q -h "$dir" -p "$POSTGRES_PORT" -U postgres -d cache_test -v ON_ERROR_STOP=1 \
    -v pw="$(cat "$dir/password")" >/dev/null <<'SQL' || { _log "cannot create the role cache_tls"; return 1; }
SELECT 'CREATE ROLE cache_tls LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cache_tls') \gexec
ALTER ROLE cache_tls PASSWORD :'pw';
GRANT ALL ON SCHEMA public TO cache_tls;
SQL
  _log "up: postgres :$POSTGRES_PORT"
}

postgres_env() {
  local dir pw
  dir=$(_pg_home)
  pw=$(cat "$dir/password" 2>/dev/null)
  # Plain on purpose: with the `tls` feature, `prefer` would verify the test CA's
  # certificate against the system's roots and fail.
  _export CACHE_TEST_POSTGRES_URL "postgres://postgres:$pw@127.0.0.1:$POSTGRES_PORT/cache_test?sslmode=disable"
  _export CACHE_TEST_POSTGRES_TLS_URL "postgres://cache_tls:$pw@127.0.0.1:$POSTGRES_PORT/cache_test?sslmode=require"
  _export CACHE_TEST_POSTGRES_TLS_CA "$dir/certs/ca.pem"
  _export CACHE_TEST_POSTGRES_BIN_DIR "$(_pg_bin)"
}

postgres_stop() {
  local bin dir
  dir=$(_pg_home)
  [[ -f "$dir/data/PG_VERSION" ]] || return 0
  bin=$(_pg_bin) || return 0
  _as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -f "$SERVERS_DIR/postgres/pid"
}
