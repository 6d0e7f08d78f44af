#!/usr/bin/env bash
# Prints the path of a Python interpreter of the wanted version (default 3.12, the
# Lambda runtime's), or explains what is missing and exits 1.
# Order: $PYTHON if given, pythonX.Y on PATH, pyenv, uv-managed interpreters.
set -euo pipefail
want="${1:-3.12}"

works() { # $1: candidate command; true when it runs and reports the wanted version
  local v
  v="$("$@" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || return 1
  [ "$v" = "$want" ]
}

if [ -n "${PYTHON:-}" ]; then
  if works "$PYTHON"; then command -v "$PYTHON"; exit 0; fi
  echo "error: PYTHON=$PYTHON is not a working Python $want interpreter." >&2
  exit 1
fi

if command -v "python$want" >/dev/null 2>&1 && works "python$want"; then
  "python$want" -c 'import sys; print(sys.executable)'; exit 0
fi

if command -v pyenv >/dev/null 2>&1; then
  for prefix in $(pyenv versions --bare 2>/dev/null | grep -E "^$want(\.[0-9]+)?$" | sort -t. -k3 -n -r); do
    candidate="$(pyenv root)/versions/$prefix/bin/python$want"
    if [ -x "$candidate" ] && works "$candidate"; then echo "$candidate"; exit 0; fi
  done
fi

if command -v uv >/dev/null 2>&1; then
  candidate="$(uv python find "$want" 2>/dev/null || true)"
  if [ -n "$candidate" ] && works "$candidate"; then echo "$candidate"; exit 0; fi
fi

cat >&2 <<MSG
error: Python $want was not found.
  The Lambda functions run on AWS's python$want runtime, so they are built and tested with it.
  Install it (e.g. 'pyenv install $want', 'uv python install $want', or your OS package manager),
  or point PYTHON at one: make test PYTHON=/path/to/python$want
MSG
exit 1
