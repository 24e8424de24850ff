# shellcheck shell=bash
#
# scripts/lib/sqlx.sh: the query data of sqlx's compile-time checked macros.
#
# Sourced by scripts/sqlx-prepare and scripts/test, which own `set -euo pipefail`,
# source scripts/lib/services.sh and call ensure_services first (the scratch
# database goes on the server of HERALD_PG_ADMIN_URL). Defines:
#   ensure_sqlx_cli        find or install the sqlx-cli matching Cargo.lock's sqlx
#   sqlx_prepare [--check] write .sqlx/ (or, with --check, fail unless it is exactly
#                          what the code and migrations/ produce)
#
# Every query in shared/src/db/ is a `sqlx::query!`-family macro. Builds read each
# query's checked description from .sqlx/ (SQLX_OFFLINE=true in .cargo/config.toml),
# so they need no database; sqlx_prepare regenerates .sqlx/ against a scratch
# database migrated from migrations/ and drops it afterwards.

# The CLI is built with only what Herald needs: PostgreSQL, and rustls for
# servers that require TLS (no MySQL, SQLite, OpenSSL or shell completions).
HERALD_SQLX_CLI_FEATURES=postgres,rustls

_herald_sqlx_log() { printf '[sqlx] %s\n' "$*" >&2; }

_herald_sqlx_root() {
  (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
}

# The sqlx version Cargo.lock resolved: the CLI must match it, as the query data
# format belongs to the macros' version.
_herald_sqlx_locked_version() {
  sed -n '/^name = "sqlx"$/{n;s/^version = "\(.*\)"$/\1/p;}' "$(_herald_sqlx_root)/Cargo.lock"
}

# Prints the version of the sqlx-cli in bin dir $1 (empty when there is none).
_herald_sqlx_cli_version() {
  [[ -x $1/sqlx && -x $1/cargo-sqlx ]] || return 0
  "$1/sqlx" --version 2>/dev/null | awk '{print $NF}'
}

# Sets HERALD_SQLX_BIN to a bin dir holding `sqlx` and `cargo-sqlx` of the locked
# version: one already on PATH (or in ~/.cargo/bin), else Herald's own copy in
# the user's cache (~/.cache/herald/sqlx-cli-<version>), installed there with
# `cargo install --locked` when missing. Outside the clone, so a fresh clone (as
# CI's is) reuses it; apart from PATH, so a developer's own sqlx-cli stays as is.
_herald_sqlx_cache_dir() {
  printf '%s/herald/sqlx-cli-%s' "${XDG_CACHE_HOME:-$HOME/.cache}" "$1"
}

ensure_sqlx_cli() {
  local want dir candidates=() started
  want=$(_herald_sqlx_locked_version)
  [[ -n $want ]] || {
    _herald_sqlx_log "ERROR: no sqlx package in Cargo.lock"
    exit 1
  }
  candidates+=("$(_herald_sqlx_cache_dir "$want")/bin")
  if command -v cargo-sqlx >/dev/null 2>&1; then
    candidates+=("$(dirname "$(command -v cargo-sqlx)")")
  fi
  candidates+=("${CARGO_HOME:-$HOME/.cargo}/bin")
  for dir in "${candidates[@]}"; do
    if [[ $(_herald_sqlx_cli_version "$dir") == "$want" ]]; then
      HERALD_SQLX_BIN=$dir
      return 0
    fi
  done
  dir=$(_herald_sqlx_cache_dir "$want")
  _herald_sqlx_log "installing sqlx-cli $want ($HERALD_SQLX_CLI_FEATURES) into $dir"
  started=$SECONDS
  cargo install sqlx-cli --version "=$want" --locked --no-default-features \
    --features "$HERALD_SQLX_CLI_FEATURES" --root "$dir" </dev/null
  _herald_sqlx_log "sqlx-cli installed in $((SECONDS - started)) s"
  HERALD_SQLX_BIN="$dir/bin"
}

# Prints HERALD_PG_ADMIN_URL with its database swapped for $1 (same server,
# credentials and parameters).
_herald_sqlx_database_url() {
  _herald_parse_url "$HERALD_PG_ADMIN_URL"
  printf '%s://%s/%s%s' "$_u_scheme" "$_u_authority" "$1" "$_u_query"
}

_HERALD_SQLX_SCRATCH_URL=""

_herald_sqlx_drop_scratch() {
  [[ -n $_HERALD_SQLX_SCRATCH_URL ]] || return 0
  "$HERALD_SQLX_BIN/sqlx" database drop -y --database-url "$_HERALD_SQLX_SCRATCH_URL" \
    </dev/null >/dev/null ||
    _herald_sqlx_log "could not drop the scratch database $_HERALD_SQLX_SCRATCH_URL"
  _HERALD_SQLX_SCRATCH_URL=""
}

sqlx_prepare() {
  local check=false root url db out started status=0 args=(--workspace)
  if [[ ${1:-} == --check ]]; then
    check=true
    args+=(--check)
  fi
  root=$(_herald_sqlx_root)
  ensure_sqlx_cli
  started=$SECONDS
  # One database per run (the pid keeps concurrent runs apart), dropped however
  # the run ends.
  db="herald_sqlx_prepare_$$"
  url=$(_herald_sqlx_database_url "$db")
  _HERALD_SQLX_SCRATCH_URL=$url
  trap _herald_sqlx_drop_scratch EXIT
  trap 'exit 130' INT TERM
  "$HERALD_SQLX_BIN/sqlx" database create --database-url "$url" </dev/null
  "$HERALD_SQLX_BIN/sqlx" migrate run --source "$root/migrations" --database-url "$url" \
    </dev/null >/dev/null
  out=$(mktemp)
  # Run as `cargo sqlx`, this very binary: it re-runs `cargo check` with CARGO,
  # and cargo itself would pick whichever cargo-sqlx comes first on its search path.
  (cd "$root" && CARGO=$(command -v cargo) "$HERALD_SQLX_BIN/cargo-sqlx" sqlx prepare \
    "${args[@]}" --database-url "$url") </dev/null 2>&1 | tee "$out" || status=$?
  _herald_sqlx_drop_scratch
  trap - EXIT INT TERM
  if [[ $status -eq 0 ]] && $check && grep -q 'potentially unused queries' "$out"; then
    # sqlx only warns; a stale file would outlive the query it described.
    _herald_sqlx_log "ERROR: .sqlx/ holds data of queries the code no longer has"
    status=1
  fi
  rm -f "$out"
  if [[ $status -ne 0 ]]; then
    if $check; then
      _herald_sqlx_log "ERROR: .sqlx/ does not match the queries and migrations/; run scripts/sqlx-prepare and commit .sqlx/"
    fi
    return "$status"
  fi
  _herald_sqlx_log "queries $($check && echo checked || echo prepared) in $((SECONDS - started)) s"
}
