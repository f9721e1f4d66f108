#!/usr/bin/env bash
# install.sh: install the pinned interop clients (and the official FalkorDB MCP
# server) outside the source tree, for examples/proxy's interop tests.
#
#   examples/proxy/testdata/interop/install.sh [DIR]
#
# DIR defaults to $TENANTGRAPH_INTEROP_DIR, else <user cache dir>/tenantgraph/interop
# (the directory Go's os.UserCacheDir names: $XDG_CACHE_HOME or ~/.cache on
# Linux, ~/Library/Caches on macOS). Layout:
#
#   DIR/node/      package.json + package-lock.json + node_modules (npm ci)
#   DIR/py/        a venv with requirements.txt
#   DIR/fastmcp/   a venv with requirements-fastmcp.txt (only with INTEROP_FASTMCP=1)
#
# Idempotent and quick when nothing changed: each part carries a stamp (sha256
# of its pin files plus the tool version) and is rebuilt only when that changes.
# Needs node >= 20 with npm, and python3 >= 3.10 with venv; registries: npm and PyPI.
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "${1:-}" ]]; then
  dir="$1"
elif [[ -n "${TENANTGRAPH_INTEROP_DIR:-}" ]]; then
  dir="$TENANTGRAPH_INTEROP_DIR"
elif [[ "$(uname -s)" == Darwin ]]; then
  dir="$HOME/Library/Caches/tenantgraph/interop"
else
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/tenantgraph/interop"
fi
mkdir -p "$dir"

stamp_of() { # files... -> one line
  cat "$@" | sha256sum | cut -d' ' -f1
}

# Node: the TypeScript SDK client, mcp-remote and @falkordb/mcpserver.
node_stamp="$(stamp_of "$src/package.json" "$src/package-lock.json") node=$(node --version)"
if [[ ! -d "$dir/node/node_modules" || "$(cat "$dir/node/.stamp" 2>/dev/null)" != "$node_stamp" ]]; then
  echo "interop: npm ci into $dir/node" >&2
  mkdir -p "$dir/node"
  rm -f "$dir/node/.stamp"
  cp "$src/package.json" "$src/package-lock.json" "$dir/node/"
  npm ci --prefix "$dir/node" --no-audit --no-fund --loglevel=error >&2
  echo "$node_stamp" >"$dir/node/.stamp"
fi

# Python: the MCP Python SDK client.
py_venv() { # name requirements-file
  local venv="$dir/$1" req="$src/$2" stamp
  stamp="$(stamp_of "$req") $(python3 --version 2>&1)"
  if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]]; then
    echo "interop: venv $venv from $2" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req" >&2
    echo "$stamp" >"$venv/.stamp"
  fi
}
py_venv py requirements.txt
if [[ "${INTEROP_FASTMCP:-}" == 1 ]]; then
  py_venv fastmcp requirements-fastmcp.txt
fi

echo "$dir"
