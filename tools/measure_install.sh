#!/usr/bin/env bash
# Measure what `pip install previsio_sdk` and `pip install 'previsio_sdk[platform]'` bring: installs each into
# a fresh virtualenv (with the pip `python3 -m venv` ships, pinned by constraints.txt) and prints the number of
# packages and the size they add to site-packages. Also checks that the SDK alone, with no URL, says in one
# sentence what to install or set. Usage: bash tools/measure_install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/previsio-install-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

site_size() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' | xargs du -sb | cut -f1; }
packages() { "$1/bin/python" -m pip list --format=freeze 2>/dev/null | grep -vc '^\(pip\|setuptools\|wheel\)=='; }

"$PY" -m venv "$WORK/empty"
base=$(site_size "$WORK/empty")

for extra in "" "[platform]"; do
  venv="$WORK/venv$extra"
  "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q -c constraints.txt "$ROOT$extra" 2>&1 | grep -v '^WARNING: Location' || true
  size=$(( $(site_size "$venv") - base ))
  printf 'previsio_sdk%-11s %3d packages, %5d MB\n' "$extra" "$(packages "$venv")" $(( size / 1000000 ))
  if [ -z "$extra" ]; then
    "$venv/bin/python" - <<'PY'
import sys

import previsio_sdk as pio

heavy = [m for m in ("fastapi", "uvicorn", "sqlalchemy", "psycopg", "pymysql", "connectorx") if m in sys.modules]
assert not heavy, heavy
try:
    pio.Project.list()
except pio.ConfigurationError as exc:
    print(f"  SDK alone, no URL: {exc}")
else:
    sys.exit("the SDK alone started a platform")
PY
  fi
done
