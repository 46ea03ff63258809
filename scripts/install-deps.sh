#!/usr/bin/env bash
# Installs the Debian packages uniter's tests and test charms use, only when
# something is missing, so a machine that has them pays nothing.
set -euo pipefail

need=()
command -v perl >/dev/null 2>&1 && perl -MTime::HiRes -e1 2>/dev/null || need+=(perl)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v mount >/dev/null 2>&1 || need+=(mount)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd) # the unit files' check

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
