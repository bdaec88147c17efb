#!/usr/bin/env bash
# System packages the suite and the demo need (Debian). Idempotent: does nothing when all are present.
#
#   bash scripts/system-deps.sh            # as root, or with sudo available
#
# - PHP (cli + sqlite3, intl, mbstring, xml) runs MediaWiki without Apache (`php -S`).
# - Chromium (Debian's `chromium`) for the Prefect UI test, driven headless by Playwright.
# - Debian's mediawiki 1.39 is unpacked (not installed: its postinst wants Apache) into
#   $WIKIMIX_MEDIAWIKI (default /opt/wikimix-mediawiki); the package's absolute symlinks into /var/lib are
#   replaced by local ones, so the tree is self-contained.
set -euo pipefail
MW_DIR="${WIKIMIX_MEDIAWIKI:-/opt/wikimix-mediawiki}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

php_ok() {
  command -v php >/dev/null 2>&1 &&
    php -r 'exit(extension_loaded("pdo_sqlite") && extension_loaded("intl") && extension_loaded("mbstring") && extension_loaded("xml") ? 0 : 1);'
}
mw_ok() { [ -f "$MW_DIR/maintenance/install.php" ] && [ -f "$MW_DIR/.wikimix-complete" ]; }
chromium_ok() { command -v chromium >/dev/null 2>&1; }

if php_ok && mw_ok && chromium_ok; then
  exit 0
fi

updated=0
apt_update() { if [ $updated = 0 ]; then $SUDO apt-get update -qq; updated=1; fi; }

if ! php_ok; then
  apt_update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    php-cli php-sqlite3 php-intl php-mbstring php-xml >/dev/null
fi

if ! chromium_ok; then
  apt_update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

if ! mw_ok; then
  # `apt-get download` fetches the .deb files without installing them (the package's postinst wants
  # Apache); mediawiki-classes holds part of includes/.
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && apt-get download mediawiki mediawiki-classes >/dev/null 2>&1); then
    apt_update
    (cd "$tmp" && apt-get download mediawiki mediawiki-classes >/dev/null)
  fi
  mkdir -p "$tmp/root"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  src="$tmp/root/usr/share/mediawiki"
  # The package points four names at /var/lib/mediawiki (Debian's writable state): extensions (a dir of
  # links into extensions-core), config, images, LocalSettings.php. Make the tree self-contained:
  # extensions -> extensions-core (relative), config and images local directories, no LocalSettings.php
  # (wikimix selects one per wiki through MW_CONFIG_FILE).
  rm -f "$src/extensions" "$src/config" "$src/images" "$src/LocalSettings.php"
  ln -s extensions-core "$src/extensions"
  mkdir -p "$src/config" "$src/images"
  if find "$src" -type l -lname '/*' | grep -q .; then
    echo "system-deps: unexpected absolute symlinks in the mediawiki package" >&2
    exit 1
  fi
  $SUDO rm -rf "$MW_DIR.new"
  $SUDO mkdir -p "$(dirname "$MW_DIR")"
  $SUDO cp -a "$src" "$MW_DIR.new"
  $SUDO touch "$MW_DIR.new/.wikimix-complete"
  $SUDO rm -rf "$MW_DIR"
  $SUDO mv "$MW_DIR.new" "$MW_DIR"
fi
