#!/usr/bin/env bash
# Install evterm on a Raspberry Pi OS / Debian 12 board as two systemd services:
# evterm.service (the daemon) and evterm-ui.service (the touchscreen). Run as root from a
# clone of the repository:
#
#   sudo systemd/install.sh [--dry-run] [--with-mqtt-tools] [--start]
#
# Steps, each one done only where it is not done yet (running it again is safe):
#   1. Debian packages: Python venv and build tools (pyscard builds against PC/SC),
#      pcscd + CCID driver, the Mesa/GBM/DRM libraries Kivy's bundled SDL2 loads on
#      KMS/DRM; mosquitto-clients with --with-mqtt-tools
#   2. users: evterm (system, no login, group dialout) and evterm-ui (video, render,
#      input, evterm)
#   3. /opt/evterm/venv with `pip install <repo>[ui]`; docs in /opt/evterm/docs
#   4. /etc/evterm (root:evterm 0750) with evterm.toml and tariff.json from the templates
#      when missing (0640 root:evterm; an existing file is never touched), then
#      `evterm config check`
#   5. the units into /etc/systemd/system, daemon-reload, enable (and start with --start;
#      never when the configuration does not check)
#
# --dry-run prints every command instead of running it (no root needed). Exit 1: not
# root, unknown option, or a step failed (the failing command is printed).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/evterm
VENV=$PREFIX/venv
CONF_DIR=/etc/evterm
UNIT_DIR=/etc/systemd/system
UNITS=(evterm.service evterm-ui.service)
APT_PACKAGES=(
  python3 python3-venv python3-dev build-essential swig libpcsclite-dev  # venv; pyscard build
  pcscd libpcsclite1 libccid                                              # PC/SC, USB readers
  libgl1-mesa-dri libgbm1 libegl1 libgles2 libdrm2 libmtdev1              # Kivy/SDL2 on KMS/DRM
)

DRY_RUN=0
START=0
MQTT_TOOLS=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --start) START=1 ;;
    --with-mqtt-tools) MQTT_TOOLS=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg (allowed: --dry-run --start --with-mqtt-tools)" >&2
       exit 1 ;;
  esac
done
[ "$MQTT_TOOLS" -eq 1 ] && APT_PACKAGES+=(mosquitto-clients)

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
run() {
  printf '+ %s\n' "$*"
  [ "$DRY_RUN" -eq 1 ] && return 0
  "$@" || { echo "install.sh: failed: $*" >&2; exit 1; }
}

if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: must run as root (sudo $0 $*); --dry-run shows what it would do" >&2
  exit 1
fi
[ "$DRY_RUN" -eq 1 ] && echo "install.sh: dry run, nothing is changed"

# ---- 1. packages --------------------------------------------------------------------
step "packages: ${APT_PACKAGES[*]}"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  note "all installed"
else
  run apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi
run systemctl enable pcscd.socket

# ---- 2. users -----------------------------------------------------------------------
ensure_group() {
  getent group "$1" >/dev/null || run groupadd --system "$1"
}
ensure_user() {  # name, home, supplementary groups (comma-separated)
  local name=$1 home=$2 groups=$3 group
  for group in ${groups//,/ }; do
    [ "$group" = "$name" ] || [ "$group" = evterm ] || ensure_group "$group"
  done
  if id -u "$name" >/dev/null 2>&1; then
    note "user $name exists; making sure it is in $groups"
    run usermod --append --groups "$groups" "$name"
  else
    run useradd --system --user-group --home-dir "$home" --no-create-home \
      --shell /usr/sbin/nologin --groups "$groups" "$name"
  fi
}
step "users: evterm (system, no login, groups dialout), evterm-ui (video render input evterm)"
ensure_user evterm /var/lib/evterm dialout
ensure_user evterm-ui /var/lib/evterm-ui video,render,input,evterm

# ---- 3. virtualenv --------------------------------------------------------------------
step "virtualenv: $VENV with $REPO[ui]"
run install -d -m 0755 -o root -g root "$PREFIX" "$PREFIX/docs"
if [ -x "$VENV/bin/python" ]; then
  note "$VENV exists; upgrading evterm in it"
else
  run python3 -m venv "$VENV"
fi
run "$VENV/bin/python" -m pip install -q --upgrade pip
run "$VENV/bin/python" -m pip install -q --prefer-binary "$REPO[ui]"
run install -m 0644 "$REPO"/docs/*.md "$PREFIX/docs/"

# ---- 4. configuration -----------------------------------------------------------------
step "configuration: $CONF_DIR/evterm.toml (root:evterm 0640), kept when present"
run install -d -m 0750 -o root -g evterm "$CONF_DIR"
install_once() {  # template, target
  if [ -e "$2" ]; then
    note "$2 exists; left as it is"
  else
    run install -m 0640 -o root -g evterm "$1" "$2"
  fi
}
install_once "$REPO/systemd/evterm.toml" "$CONF_DIR/evterm.toml"
install_once "$REPO/examples/tariffs/de_dc_hpc_adhoc.json" "$CONF_DIR/tariff.json"
config_ok=1
printf '+ %s\n' "$VENV/bin/evterm config check $CONF_DIR/evterm.toml"
if [ "$DRY_RUN" -eq 0 ] && ! "$VENV/bin/evterm" config check "$CONF_DIR/evterm.toml"; then
  config_ok=0
  note "fix $CONF_DIR/evterm.toml (docs/configuration.md); the services are not started"
fi

# ---- 5. systemd units -----------------------------------------------------------------
step "systemd units: ${UNITS[*]} into $UNIT_DIR, daemon-reload, enable"
for unit in "${UNITS[@]}"; do
  run install -m 0644 "$REPO/systemd/$unit" "$UNIT_DIR/$unit"
done
booted=0  # systemd runs as PID 1 (not a chroot building an image)
[ -d /run/systemd/system ] || [ "$DRY_RUN" -eq 1 ] && booted=1
if [ "$booted" -eq 1 ]; then
  run systemctl daemon-reload
else
  note "systemd is not running here (an image build?): daemon-reload left to the boot"
fi
run systemctl enable "${UNITS[@]}"
if [ "$START" -eq 1 ]; then
  if [ "$config_ok" -eq 1 ] && [ "$booted" -eq 1 ]; then
    run systemctl restart "${UNITS[@]}"
  else
    note "not started: the configuration does not check, or systemd is not running"
  fi
else
  note "start with: systemctl start ${UNITS[*]}"
fi

step "done"
note "status: systemctl status evterm; logs: journalctl -u evterm -u evterm-ui"
note "SSH technicians need group evterm for the service menu: usermod -aG evterm LOGIN"
