# shellcheck shell=bash
#
# scripts/lib/services.sh: make PostgreSQL and Redis available to dev and tests.
#
# Sourced by scripts/dev and scripts/test, which own `set -euo pipefail`.
# Defines:
#   ensure_services        find or start Postgres + Redis, then export URLs
#   stop_private_services  stop every private instance this file started
#
# Exported by ensure_services:
#   DATABASE_URL         the caller's value if it was set; otherwise
#                        postgres://postgres@HOST:PORT/herald
#   HERALD_PG_ADMIN_URL  the caller's value if it was set; otherwise the server
#                        and credentials of DATABASE_URL with the database
#                        swapped for the maintenance db "postgres" (tests use
#                        it to CREATE DATABASE)
#   REDIS_URL            the caller's value if it was set; otherwise
#                        redis://HOST:PORT
#
# Strategy: if something healthy already answers at the target address
# (DATABASE_URL / REDIS_URL, or the standard local ports), use it. If not,
# start a private throwaway instance under .herald/services/ from locally
# installed binaries (installing them with apt-get when we are root). On the
# URL's port when a local URL was given, otherwise on 55432 / 56379, so a
# stopped system service on 5432/6379 is never shadowed. We never stop,
# restart or reconfigure the machine's own services.
#
# Written for bash 3.2 as well (macOS /bin/bash): no namerefs, no mapfile,
# no {fd} redirections, no empty-array expansion under `set -u`.

HERALD_PRIVATE_PG_PORT=55432
HERALD_PRIVATE_REDIS_PORT=56379

# Longest Unix socket path we accept for a private Postgres
# (<dir>/run/.s.PGSQL.<port>): it must fit in sockaddr_un.sun_path (104 bytes on
# macOS, 108 on Linux).
_HERALD_MAX_SOCKET_PATH=100

_herald_svc_log() { printf '[services] %s\n' "$*" >&2; }

_herald_svc_die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  exit 1
}

_herald_services_dir() {
  printf '%s/.herald/services' "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
}

_herald_is_root() { [[ $(id -u) -eq 0 ]]; }

# ---------------------------------------------------------------------------
# URL parsing. Sets globals (bash 3.2 has no namerefs):
#   _u_scheme _u_userinfo _u_authority _u_host _u_port _u_query
# Enough for postgres://, postgresql://, redis:// and rediss:// URLs, including
# bracketed IPv6 hosts. Multi-host Postgres URLs aren't supported.
# ---------------------------------------------------------------------------
_herald_parse_url() {
  local url=$1 rest tail
  local re_v6='^\[([^]]*)\](:([0-9]*))?$' re_v4='^([^:]*)(:([0-9]*))?$'
  _u_scheme=${url%%://*}
  rest=${url#*://}
  _u_authority=${rest%%[/?#]*}
  tail=${rest:${#_u_authority}}
  _u_query=""
  if [[ $tail == *\?* ]]; then
    _u_query="?${tail#*\?}"
    _u_query=${_u_query%%#*}
  fi
  _u_userinfo=""
  if [[ $_u_authority == *@* ]]; then
    _u_userinfo=${_u_authority%@*}
  fi
  local hostport=${_u_authority##*@}
  if [[ $hostport =~ $re_v6 ]]; then
    _u_host=${BASH_REMATCH[1]}
    _u_port=${BASH_REMATCH[3]}
  elif [[ $hostport =~ $re_v4 ]]; then
    _u_host=${BASH_REMATCH[1]}
    _u_port=${BASH_REMATCH[3]}
  else
    _herald_svc_die "cannot parse host:port out of URL scheme '$_u_scheme' (authority '$hostport')"
  fi
}

# Decodes %XX escapes (user names in URLs may be percent-encoded).
_herald_urldecode() { printf '%b' "${1//%/\\x}"; }

# Host as it must appear inside a URL (IPv6 literals need brackets).
_herald_url_host() {
  case $1 in
    *:*) printf '[%s]' "$1" ;;
    *) printf '%s' "$1" ;;
  esac
}

# A private instance only makes sense when the target is this machine.
_herald_is_local_host() {
  case $1 in
    "" | 127.0.0.1 | localhost | ::1) return 0 ;;
    *) return 1 ;;
  esac
}

# Address a private instance listens on for a given target host.
_herald_listen_addr() {
  if [[ $1 == "::1" ]]; then printf '::1'; else printf '127.0.0.1'; fi
}

# ---------------------------------------------------------------------------
# Probes. Each is bounded by `timeout` where available, so a blackholed remote
# host can't hang dev/test for minutes (macOS has no `timeout`; local
# refusals there are instant anyway).
# ---------------------------------------------------------------------------
_herald_with_timeout() {
  if command -v timeout >/dev/null 2>&1; then
    timeout 5 "$@"
  else
    "$@"
  fi
}

# True when something accepts TCP connections at host:port. Uses bash's
# /dev/tcp, so no netcat is needed.
_herald_tcp_open() {
  # shellcheck disable=SC2016 # $1/$2 are expanded by the inner bash
  _herald_with_timeout bash -c 'exec 3<>"/dev/tcp/$1/$2"' herald-probe "$1" "$2" 2>/dev/null
}

# Probes Postgres at host:port without credentials. Returns pg_isready's
# codes: 0 accepting, 1 rejecting (starting up / shutting down), 2 no
# response. Without pg_isready an open port counts as 0.
_herald_pg_probe() {
  if command -v pg_isready >/dev/null 2>&1; then
    _herald_with_timeout pg_isready -q -h "$1" -p "$2" -t 3 >/dev/null 2>&1
  else
    _herald_tcp_open "$1" "$2" || return 2
  fi
}

# True when Postgres at host:port accepts connections. Waits (up to ~10 s)
# only while the server says it is starting, so the common cases (up, or
# nothing there) answer at once.
_herald_pg_ready() {
  local tries=20 rc
  while :; do
    rc=0
    _herald_pg_probe "$1" "$2" || rc=$?
    case $rc in
      0) return 0 ;;
      1) ;;
      *) return 1 ;;
    esac
    tries=$((tries - 1))
    [[ $tries -gt 0 ]] || return 1
    sleep 0.5
  done
}

# Prints Redis's reply to PING. Without redis-cli, speak the inline protocol
# over /dev/tcp.
_herald_redis_ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    _herald_with_timeout redis-cli -h "$1" -p "$2" ping 2>&1 </dev/null || true
  else
    # shellcheck disable=SC2016 # $1/$2 are expanded by the inner bash
    _herald_with_timeout bash -c '
      exec 3<>"/dev/tcp/$1/$2" || exit 1
      printf "PING\r\n" >&3
      IFS= read -r -t 3 reply <&3 || true
      printf "%s\n" "$reply"
    ' herald-probe "$1" "$2" 2>/dev/null || true
  fi
}

# True when host:port is a usable Redis. NOAUTH still proves it's Redis: the
# password is in REDIS_URL and is the application's business, and keeping it
# off our command lines keeps it out of `ps`. TLS (rediss://) can't be
# PINGed in plain text, so there an open port has to do.
_herald_redis_ready() {
  local host=$1 port=$2 scheme=${3:-redis} reply
  if [[ $scheme == rediss ]]; then
    _herald_tcp_open "$host" "$port"
    return
  fi
  reply=$(_herald_redis_ping "$host" "$port")
  # LOADING: a restarting Redis reading its dump; it is Redis and will be ready.
  case $reply in
    *PONG* | *NOAUTH* | *LOADING*) return 0 ;;
    *) return 1 ;;
  esac
}

# Retries a command for ~5 s (a just-daemonized Redis, a stopping process).
_herald_wait_for() {
  local i
  for i in 1 2 3 4 5 6 7 8 9 10; do
    "$@" && return 0
    [[ $i -lt 10 ]] && sleep 0.5
  done
  return 1
}

# ---------------------------------------------------------------------------
# Binaries and installation
# ---------------------------------------------------------------------------

# Prints the major version of the Postgres binaries in dir $1
# ("postgres (PostgreSQL) 15.8 (Debian ...)" -> 15).
_herald_pg_major() {
  "$1/postgres" --version 2>/dev/null | sed -n 's/^[^0-9]*\([0-9][0-9]*\).*/\1/p'
}

# Candidate Postgres bin dirs, best first: whatever is on PATH (Homebrew
# links, the /usr/local/bin symlinks some images have), then Debian's
# versioned dirs newest first, then Homebrew's keg-only postgresql@N.
_herald_pg_bindir_candidates() {
  local p l
  if p=$(command -v pg_ctl 2>/dev/null); then
    # Resolve symlinks (e.g. /usr/local/bin/pg_ctl -> /usr/lib/postgresql/15/bin/pg_ctl)
    # so initdb and postgres are looked for beside the real binary.
    while [[ -L $p ]]; do
      l=$(readlink "$p")
      case $l in
        /*) p=$l ;;
        *) p="$(dirname "$p")/$l" ;;
      esac
    done
    dirname "$p"
  fi
  # shellcheck disable=SC2012 # fixed-form version dirs; ls+sort orders them numerically
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5nr || true
  ls -d /opt/homebrew/opt/postgresql@*/bin /usr/local/opt/postgresql@*/bin 2>/dev/null || true
}

# Prints a bin dir holding initdb, pg_ctl and postgres (of major version $1 if
# given, to match an existing data dir). Fails when there is none.
_herald_pg_bindir() {
  local want=${1:-} dir
  while IFS= read -r dir; do
    [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]] || continue
    if [[ -z $want || $(_herald_pg_major "$dir") == "$want" ]]; then
      printf '%s' "$dir"
      return 0
    fi
  done < <(_herald_pg_bindir_candidates)
  return 1
}

_herald_redis_bin() {
  local c
  for c in "$(command -v redis-server 2>/dev/null || true)" /usr/bin/redis-server \
    /opt/homebrew/bin/redis-server /usr/local/bin/redis-server; do
    if [[ -n $c && -x $c ]]; then
      printf '%s' "$c"
      return 0
    fi
  done
  return 1
}

_herald_print_install_hint() {
  cat >&2 <<'HINT'
[services] Herald needs PostgreSQL and Redis. Nothing answered at the target
[services] address and the binaries to start a private instance are missing.
[services] Install them, then re-run:
[services]   Debian/Ubuntu:     sudo apt-get install postgresql redis-server
[services]   macOS (Homebrew):  brew install postgresql@16 redis
[services] (No need to start them: a private instance is started under
[services] .herald/services/.) Or point DATABASE_URL / REDIS_URL at servers you
[services] already run.
HINT
}

# Installs Debian packages as root without letting them start anything:
# postgresql's main cluster and redis-server's default instance would grab
# 5432/6379 and we start our own private instance anyway. A temporary
# policy-rc.d that answers 101 ("action forbidden") is Debian's sanctioned
# way to do that; an existing one (common in Docker images) is left alone.
_herald_apt_install() {
  local policy=/usr/sbin/policy-rc.d
  if ! _herald_is_root; then
    _herald_print_install_hint
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    _herald_print_install_hint
    _herald_svc_die "no apt-get here; install the packages above with your package manager"
  fi
  _herald_svc_log "installing $* with apt-get (root; services will not be auto-started)"
  (
    if [[ ! -e $policy ]]; then
      trap 'rm -f "$policy"' EXIT
      trap 'exit 130' INT TERM
      printf '#!/bin/sh\n# temporary, from herald scripts/lib/services.sh\nexit 101\n' >"$policy"
      chmod 0755 "$policy"
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@"
  ) </dev/null >&2 || _herald_svc_die "apt-get install $* failed"
}

# ---------------------------------------------------------------------------
# Private Postgres
# ---------------------------------------------------------------------------

# Runs a command as the `postgres` system user when we are root (Postgres
# refuses to run as root), from a directory that user can read (pg_ctl
# complains when it can't resolve its working directory).
_herald_as_pg() {
  local home=$1
  shift
  if _herald_is_root; then
    (cd "$home" && runuser -u postgres -- "$@")
  else
    (cd "$home" && "$@")
  fi
}

# True when a private Postgres home at $1 for port $2 would work: the socket
# path fits, and (as root) the postgres user can traverse to it.
_herald_pg_home_usable() {
  local dir=$1 port=$2 sock
  sock="$dir/run/.s.PGSQL.$port"
  [[ ${#sock} -le $_HERALD_MAX_SOCKET_PATH ]] || return 1
  if _herald_is_root; then
    runuser -u postgres -- test -x "$(dirname "$dir")" 2>/dev/null || return 1
  fi
}

# Prints the (physical) home of the private Postgres for port $1, creating it.
# Normally .herald/services/postgres-PORT. If the repo lives where the postgres
# user can't reach (e.g. /root/...) or the path is too long for a socket, the
# home goes to /var/tmp and .herald/services/postgres-PORT is a symlink to it,
# so stop_private_services still finds it.
_herald_pg_home() {
  local port=$1 services link real
  services=$(_herald_services_dir)
  link="$services/postgres-$port"
  if [[ ! -e $link ]]; then
    mkdir -p "$services"
    # Let the postgres user traverse (not list) our folders.
    _herald_is_root && chmod o+x "$(dirname "$services")" "$services"
    if _herald_pg_home_usable "$link" "$port"; then
      mkdir -p "$link"
    else
      real="/var/tmp/herald-$(id -u)-$(printf '%s' "$services" | cksum | cut -d' ' -f1)/postgres-$port"
      mkdir -p "$real"
      chmod o+x "$(dirname "$real")"
      ln -sfn "$real" "$link"
      _herald_svc_log "postgres data relocated to $real (postgres user can't reach $services, or socket path too long)"
    fi
  fi
  real=$(cd "$link" && pwd -P)
  mkdir -p "$real/run"
  _herald_is_root && chown postgres: "$real" "$real/run"
  printf '%s' "$real"
}

# initdb with trust auth for the `postgres` superuser, then settings for a
# throwaway dev/test server: private port and socket dir, loopback only, and
# durability off (a crash may lose this data, which is fine and much faster).
_herald_pg_initdb() {
  local bindir=$1 home=$2 port=$3 listen=$4
  rm -rf "$home/data" # a half-finished earlier initdb would make initdb refuse
  _herald_svc_log "initialising private postgres in $home/data"
  _herald_as_pg "$home" "$bindir/initdb" -D "$home/data" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C --no-sync >"$home/initdb.log" 2>&1 ||
    _herald_svc_die "initdb failed; see $home/initdb.log"
  cat >>"$home/data/postgresql.conf" <<CONF

# --- added by herald scripts/lib/services.sh (private dev/test instance) ---
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$home/run'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
}

# Starts (initialising first if needed) the private Postgres on port $1.
_herald_pg_start_private() {
  local port=$1 listen=$2 home bindir version=""
  _herald_pg_bindir >/dev/null || _herald_apt_install postgresql
  home=$(_herald_pg_home "$port")
  [[ -s $home/data/PG_VERSION ]] && version=$(<"$home/data/PG_VERSION")
  if ! bindir=$(_herald_pg_bindir "$version"); then
    _herald_svc_die "data in $home/data is PostgreSQL $version but no such binaries are installed; remove $home (throwaway data) and re-run"
  fi
  [[ -n $version ]] || _herald_pg_initdb "$bindir" "$home" "$port" "$listen"
  _herald_svc_log "starting private postgres on $listen:$port"
  if ! _herald_as_pg "$home" "$bindir/pg_ctl" -D "$home/data" -l "$home/postgres.log" \
    -w -t 60 start >/dev/null 2>&1; then
    tail -n 20 "$home/postgres.log" >&2 || true
    _herald_svc_die "private postgres failed to start; log: $home/postgres.log"
  fi
}

# A DATABASE_URL with a user other than postgres must work against a private
# instance too: create that role (superuser: migrations may create
# extensions, tests create databases). Trust auth ignores its password.
_herald_pg_ensure_role() {
  local port=$1 role=$2
  [[ -n $role && $role != postgres ]] || return 0
  command -v psql >/dev/null 2>&1 || {
    _herald_svc_log "psql not found; cannot create role '$role' on the private instance"
    return 0
  }
  # psql variables (:'v' / :"v") quote the name safely; they only work on stdin.
  psql -X -q -v ON_ERROR_STOP=1 -v role="$role" \
    "postgres://postgres@127.0.0.1:$port/postgres" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN SUPERUSER', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SQL
}

# Exports DATABASE_URL / HERALD_PG_ADMIN_URL for the server at host:port.
_herald_pg_export() {
  local host=$1 port=$2 hp admin
  hp="$(_herald_url_host "$host"):$port"
  if [[ -n ${DATABASE_URL:-} ]]; then
    _herald_parse_url "$DATABASE_URL"
    # Same scheme, credentials, host, port and query; only the database changes.
    admin="$_u_scheme://$_u_authority/postgres$_u_query"
  else
    DATABASE_URL="postgres://postgres@$hp/herald"
    admin="postgres://postgres@$hp/postgres"
  fi
  export DATABASE_URL
  export HERALD_PG_ADMIN_URL="${HERALD_PG_ADMIN_URL:-$admin}"
}

# True when .herald/services holds a running private Postgres for port $1.
_herald_pg_is_private() {
  [[ -f "$(_herald_services_dir)/postgres-$1/data/postmaster.pid" ]]
}

# Target: DATABASE_URL's host/port, else 127.0.0.1:5432.
_herald_ensure_postgres() {
  local host=127.0.0.1 port=5432 user="" port_private listen
  if [[ -n ${DATABASE_URL:-} ]]; then
    _herald_parse_url "$DATABASE_URL"
    host=${_u_host:-127.0.0.1}
    port=${_u_port:-5432}
    user=$(_herald_urldecode "${_u_userinfo%%:*}")
  fi

  if _herald_pg_ready "$host" "$port"; then
    _herald_pg_export "$host" "$port"
    if _herald_is_local_host "$host" && _herald_pg_is_private "$port"; then
      _herald_pg_ensure_role "$port" "$user"
      _herald_svc_log "postgres: private instance at $host:$port (.herald/services/postgres-$port)"
    else
      _herald_svc_log "postgres: existing server at $host:$port"
    fi
    return 0
  fi

  if [[ -n ${DATABASE_URL:-} ]]; then
    # The user chose this address: a private instance can only stand in for
    # it on this machine, on the same port, and only if the port is free.
    _herald_is_local_host "$host" ||
      _herald_svc_die "DATABASE_URL points at $host:$port, which is unreachable; start it, or unset DATABASE_URL to get a private local instance"
    port_private=$port
    listen=$(_herald_listen_addr "$host")
    _herald_tcp_open "$listen" "$port_private" &&
      _herald_svc_die "something listens on $listen:$port_private but doesn't answer as PostgreSQL; free the port or fix DATABASE_URL"
    _herald_pg_start_private "$port_private" "$listen"
  else
    host=127.0.0.1
    port_private=$HERALD_PRIVATE_PG_PORT
    listen=$host
    # Fast path on reruns: our private instance is already up.
    if ! _herald_pg_ready "$listen" "$port_private"; then
      _herald_tcp_open "$listen" "$port_private" &&
        _herald_svc_die "port $port_private is taken by something that isn't PostgreSQL; free it or set DATABASE_URL"
      _herald_pg_start_private "$port_private" "$listen"
    fi
  fi
  _herald_pg_ensure_role "$port_private" "$user"
  _herald_pg_export "$host" "$port_private"
  _herald_svc_log "postgres: private instance at $listen:$port_private (.herald/services/postgres-$port_private)"
}

# ---------------------------------------------------------------------------
# Private Redis
# ---------------------------------------------------------------------------

# No persistence: it's a cache/queue for dev and tests, and snapshots would
# only litter the folder.
_herald_redis_start_private() {
  local port=$1 listen=$2 bin dir
  bin=$(_herald_redis_bin) || {
    _herald_apt_install redis-server
    bin=$(_herald_redis_bin) || _herald_svc_die "redis-server still missing after install"
  }
  dir="$(_herald_services_dir)/redis-$port"
  mkdir -p "$dir"
  _herald_svc_log "starting private redis on $listen:$port"
  (cd "$dir" && "$bin" --port "$port" --bind "$listen" --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir") \
    </dev/null >/dev/null 2>&1 || true
  # --daemonize returns before the server is up (or has failed), so poll.
  if ! _herald_wait_for _herald_redis_ready "$listen" "$port"; then
    tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
    _herald_svc_die "private redis failed to start; log: $dir/redis.log"
  fi
}

_herald_redis_is_private() {
  local pidfile pid
  pidfile="$(_herald_services_dir)/redis-$1/redis.pid"
  [[ -f $pidfile ]] && pid=$(<"$pidfile") && kill -0 "$pid" 2>/dev/null
}

# Target: REDIS_URL's host/port, else 127.0.0.1:6379.
_herald_ensure_redis() {
  local host=127.0.0.1 port=6379 scheme=redis port_private listen
  if [[ -n ${REDIS_URL:-} ]]; then
    _herald_parse_url "$REDIS_URL"
    scheme=$_u_scheme
    host=${_u_host:-127.0.0.1}
    port=${_u_port:-6379}
  fi

  if _herald_redis_ready "$host" "$port" "$scheme"; then
    export REDIS_URL="${REDIS_URL:-redis://$(_herald_url_host "$host"):$port}"
    if _herald_is_local_host "$host" && _herald_redis_is_private "$port"; then
      _herald_svc_log "redis: private instance at $host:$port (.herald/services/redis-$port)"
    else
      _herald_svc_log "redis: existing server at $host:$port"
    fi
    return 0
  fi

  if [[ -n ${REDIS_URL:-} ]]; then
    _herald_is_local_host "$host" ||
      _herald_svc_die "REDIS_URL points at $host:$port, which is unreachable; start it, or unset REDIS_URL to get a private local instance"
    [[ $scheme == redis ]] ||
      _herald_svc_die "REDIS_URL uses $scheme://; a private instance only speaks plain redis://"
    port_private=$port
  else
    host=127.0.0.1
    port_private=$HERALD_PRIVATE_REDIS_PORT
  fi
  listen=$(_herald_listen_addr "$host")

  if ! _herald_redis_ready "$listen" "$port_private"; then
    _herald_tcp_open "$listen" "$port_private" &&
      _herald_svc_die "port $port_private is taken by something that isn't Redis; free it or set REDIS_URL"
    _herald_redis_start_private "$port_private" "$listen"
  fi
  export REDIS_URL="${REDIS_URL:-redis://$(_herald_url_host "$listen"):$port_private}"
  _herald_svc_log "redis: private instance at $listen:$port_private (.herald/services/redis-$port_private)"
}

# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

ensure_services() {
  _herald_ensure_postgres
  _herald_ensure_redis
}

# Stops every private instance under .herald/services (data is kept; delete
# the folder to wipe it). Never touches servers we didn't start.
stop_private_services() {
  local services dir home pid bindir version
  services=$(_herald_services_dir)
  for dir in "$services"/postgres-*; do
    [[ -e $dir/data/postmaster.pid ]] || continue
    home=$(cd "$dir" && pwd -P)
    _herald_svc_log "stopping private postgres ($dir)"
    version=$(<"$home/data/PG_VERSION")
    bindir=$(_herald_pg_bindir "$version") || {
      _herald_svc_log "no PostgreSQL $version binaries to stop $dir with"
      continue
    }
    _herald_as_pg "$home" "$bindir/pg_ctl" -D "$home/data" -m fast -w stop >/dev/null ||
      _herald_svc_log "pg_ctl stop failed for $dir"
  done
  for dir in "$services"/redis-*; do
    [[ -f $dir/redis.pid ]] || continue
    pid=$(<"$dir/redis.pid")
    # Check the pid is still a redis-server: after a reboot it may be reused.
    if kill -0 "$pid" 2>/dev/null && ps -p "$pid" -o comm= | grep -q redis; then
      _herald_svc_log "stopping private redis ($dir, pid $pid)"
      kill -TERM "$pid"
      _herald_wait_for _herald_pid_gone "$pid" ||
        _herald_svc_log "redis pid $pid did not exit"
    fi
    rm -f "$dir/redis.pid"
  done
}

_herald_pid_gone() { ! kill -0 "$1" 2>/dev/null; }
