#!/usr/bin/env bash
# Builds and installs Citus 13.2.2 (distributed PostgreSQL; AGPL-3.0; runs PostGIS) into
# Debian's PostgreSQL 15 from vendor/citus/citus-13.2.2.tar.gz (what it is: vendor/citus/README.md).
# Idempotent: does nothing when citus.so is already installed for this PostgreSQL. About a
# minute on 2 cores, plus apt. `make test` runs it before any cluster starts: installing
# postgresql-server-dev-15 may upgrade PostgreSQL 15 to Debian's newest minor release, and a
# cluster already running on the old binaries then fails to load its own libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=$PWD/vendor/citus/citus-13.2.2.tar.gz
pgconfig=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$pgconfig" ] || pgconfig=$(command -v pg_config || true)
if [ -z "$pgconfig" ]; then echo "没有 PostgreSQL 15 / no pg_config: run scripts/setup.sh first" >&2; exit 1; fi
if [ -f "$("$pgconfig" --pkglibdir)/citus.so" ]; then echo "citus 已安装 / citus already installed"; exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
need=(postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev make gcc)
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "安装编译依赖 / installing: ${missing[*]}"
  before=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  after=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
  if [ -n "$before" ] && [ "$before" != "$after" ]; then
    echo "注意 / note: PostgreSQL 15 was upgraded $before → $after: restart every running cluster" >&2
  fi
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
tar xzf "$tarball" -C "$build"
cd "$build/citus-13.2.2"
./configure PG_CONFIG="$pgconfig" >/dev/null
make -j"$(nproc)" >/dev/null
$SUDO make install >/dev/null
echo "citus 已安装 / citus installed into $("$pgconfig" --pkglibdir)"
