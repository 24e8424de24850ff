# shellcheck shell=bash
#
# scripts/lib/python.sh: Python-based helper tools for dev and test.
#
# Sourced by scripts/dev and scripts/test, which own `set -euo pipefail`.
# Defines ensure_python_tools. After it returns:
#   HERALD_VENV  absolute path of the project venv (.herald/venv), exported
#   PATH         has "$HERALD_VENV/bin" in front, so honcho,
#                openapi-spec-validator and aiosmtpd resolve from the venv
#
# A project-local venv keeps these tools off the system Python and out of
# the developer's global site-packages. A stamp file records the requirement
# list that was last installed, so a rerun only does a few stat() calls and
# one trivial python start (well under a second).

# Pinned so CI and laptops run the same tools. To bump one, edit it here:
# the stamp no longer matches, so the next run reinstalls.
HERALD_PY_REQUIREMENTS=(
  "honcho==2.0.0"                 # Procfile runner used by scripts/dev
  "openapi-spec-validator==0.9.0" # tests validate openapi/openapi.json
  "aiosmtpd==1.4.6"               # local SMTP sink for email delivery tests
  "schemathesis==4.32.5"          # schema-driven API fuzzer (tests/tests/e2e/api/fuzz.rs, scripts/fuzz)
)

# Where the repo root is, worked out from this file's location so callers can
# run from any directory.
_herald_py_root() {
  (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
}

# True when the venv exists and its interpreter still starts. A pyenv or Homebrew
# Python upgrade can leave the venv's python symlink dangling.
_herald_venv_healthy() {
  local venv=$1
  [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c '' >/dev/null 2>&1
}

_herald_venv_create() {
  local venv=$1 python=${HERALD_PYTHON:-python3}
  if ! command -v "$python" >/dev/null 2>&1; then
    printf '[python] %s not found; install Python 3.9+ (Debian: sudo apt-get install python3 python3-venv)\n' "$python" >&2
    exit 1
  fi
  rm -rf "$venv"
  printf '[python] creating venv at %s\n' "$venv" >&2
  if ! "$python" -m venv "$venv" >&2; then
    rm -rf "$venv"
    printf '[python] "%s -m venv" failed; on Debian/Ubuntu: sudo apt-get install python3-venv\n' "$python" >&2
    exit 1
  fi
}

# Installs the pinned requirements when the stamp doesn't match them.
_herald_venv_sync() {
  local venv=$1 stamp="$1/.herald-requirements" want
  want=$(printf '%s\n' "${HERALD_PY_REQUIREMENTS[@]}")
  if [[ -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
    return 0
  fi
  printf '[python] installing %s\n' "${HERALD_PY_REQUIREMENTS[*]}" >&2
  # PIP_NO_INPUT: never block on a prompt (CI has no stdin).
  PIP_NO_INPUT=1 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "${HERALD_PY_REQUIREMENTS[@]}" </dev/null >&2
  # The stamp is written only after a successful install, so a failure retries next time.
  printf '%s\n' "$want" >"$stamp"
}

ensure_python_tools() {
  local venv
  venv="$(_herald_py_root)/.herald/venv"
  mkdir -p "${venv%/*}"
  _herald_venv_healthy "$venv" || _herald_venv_create "$venv"
  _herald_venv_sync "$venv"

  export HERALD_VENV="$venv"
  # Prepend once; repeated calls must not keep growing PATH.
  case ":$PATH:" in
    *":$venv/bin:"*) ;;
    *) PATH="$venv/bin:$PATH" ;;
  esac
  export PATH
}
