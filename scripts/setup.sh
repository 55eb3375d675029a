#!/usr/bin/env bash
# Installs what titlemap needs on Debian/Ubuntu, only what is missing:
# system packages (PostgreSQL + PostGIS) and a virtualenv in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages this project needs at run and test time.
# chromium: browser tests (Playwright drives it, never downloads its own); fonts-noto-cjk: Chinese
# text in pages; fonts-wqy-microhei: TrueType CJK that PDFs embed searchable; poppler-utils:
# pdftotext/pdffonts/pdftoppm read PDFs back; gdal-bin: ogrinfo/ogr2ogr test the OGC API and tiles.
APT_PACKAGES=(postgresql-postgis python3-venv chromium fonts-noto-cjk fonts-wqy-microhei poppler-utils gdal-bin)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "安装系统软件包 / installing: ${missing[*]}"
    # Keep apt from creating and starting a 'main' cluster on port 5432: titlemap runs its own.
    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/titlemap.conf >/dev/null
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The newest Python >= 3.11 on PATH.
PYTHON=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        PYTHON="$candidate"; break
    fi
done
if [ -z "$PYTHON" ]; then
    echo "需要 Python ≥ 3.11 / titlemap needs Python >= 3.11 (apt-get install python3.11)" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install.
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    touch .venv/.installed
fi
