#!/usr/bin/env bash
# Runs the whole test suite. Installs what it needs first: Debian packages (SoftHSM2, qemu-img,
# the MySQL client library, Chromium for the web-UI tests) when missing, then this project with
# its extras (Playwright drives the installed Chromium; it downloads no browser).
#   bash tools/test.sh                      # SQLite
#   KMS_TEST_MYSQL_URL=mysql+mysqldb://root@127.0.0.1:3306 bash tools/test.sh   # MariaDB
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in softhsm2 qemu-utils opensc default-libmysqlclient-dev pkg-config chromium galera-4 rsync iproute2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[mysql,hsm,test]' 2>&1 | grep -v '^WARNING' || true
# SoftHSM2, qemu and Chromium were just installed: a test skipping for want of them is a failure
# here (tests/conftest.py, tests/ui/conftest.py). Set them to 0 to allow skipping.
export KMS_REQUIRE_HSM="${KMS_REQUIRE_HSM-1}" KMS_REQUIRE_QEMU="${KMS_REQUIRE_QEMU-1}"
export KMS_REQUIRE_UI="${KMS_REQUIRE_UI-1}"
# The Galera tests run on the MariaDB pass, on a private 3-node cluster (tests/support/galera.py).
[ -z "${KMS_TEST_MYSQL_URL:-}" ] || export KMS_REQUIRE_GALERA="${KMS_REQUIRE_GALERA-1}"
exec python3 -m pytest "$@"
