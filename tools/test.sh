#!/usr/bin/env bash
# Runs the whole test suite. Installs what it needs first: Debian packages (SoftHSM2, qemu-img,
# the MySQL client library) when missing, then this project with its extras.
#   bash tools/test.sh                      # SQLite
#   KMS_TEST_MYSQL_URL=mysql+mysqldb://root@127.0.0.1:3306 bash tools/test.sh   # MariaDB
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in softhsm2 qemu-utils opensc default-libmysqlclient-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[mysql,hsm,test]' 2>&1 | grep -v '^WARNING' || true
exec python3 -m pytest "$@"
