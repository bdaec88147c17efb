#!/usr/bin/env bash
# System packages the suite and the demo need (Debian). Idempotent: does nothing when all are present.
set -euo pipefail
need=()
command -v php >/dev/null 2>&1 || need+=(php-cli php-sqlite3 php-intl php-mbstring php-xml)
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
