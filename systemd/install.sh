#!/usr/bin/env bash
# Install or upgrade evterm on a Raspberry Pi OS / Debian 12 board as two systemd services:
# evterm.service (the daemon) and evterm-ui.service (the touchscreen). Run as root from a
# clone of the repository:
#
#   sudo systemd/install.sh [--dry-run] [--start] [--with-mqtt-tools]
#                           [--wheelhouse DIR] [--idle-timeout-s S] [--skip-packages]
#
# Steps, each one done only where it is not done yet (running it again is safe):
#   1. Debian packages: Python venv and build tools (pyscard builds against PC/SC),
#      pcscd + CCID driver, the Mesa/GBM/DRM libraries Kivy's bundled SDL2 loads on
#      KMS/DRM; mosquitto-clients with --with-mqtt-tools
#   2. users: evterm (system, no login, group dialout) and evterm-ui (video, render,
#      input, evterm)
#   3. /opt/evterm/releases/VERSION/venv: evterm's wheel, built from a copy of the checkout
#      in a temporary folder (nothing is written into the checkout), installed with its
#      [ui] extra at the versions pinned in constraints/board.txt; with --wheelhouse DIR
#      only from DIR (no network; an evterm wheel of this version in DIR is used as it
#      is); then /opt/evterm/current -> releases/VERSION (switched atomically; the units
#      run current/venv/bin/evterm; docs/updates.md); an old board's /opt/evterm/venv is
#      removed and made a link to current/venv; the command `evterm` on PATH
#      (/usr/local/bin/evterm -> current); docs in /opt/evterm/docs
#   4. /etc/evterm (root:evterm 0750) with evterm.toml and tariff.json from the templates
#      when missing (0640 root:evterm; an existing file is never touched); key files in it
#      (*.key, *key*.pem) made evterm's alone (0600); /var/lib/evterm (evterm, 0700) with
#      an empty pins file pins.json (evterm, 0600) when missing; the operator's TUF
#      root /etc/evterm/update-root.json, when given, becomes the trust anchor of signed
#      updates (/opt/evterm/update/metadata/root.json, once); then `evterm config
#      check` run as the evterm user (it fails where the daemon could not read a file)
#   5. the units into /etc/systemd/system (evterm, evterm-ui, and the updater's
#      evterm-update.service + evterm-update.path), daemon-reload, enable (only when the
#      configuration checks); --start also (re)starts them, on an upgrade only once no
#      session is open (`evterm service wait-idle`, at most --idle-timeout-s, default 900)
#
# --dry-run prints every command instead of running it (no root needed). --skip-packages
# leaves out step 1 (an image whose packages are installed otherwise; the tests).
# Exit 1: not root, unknown option, or a step failed (the failing command is printed);
# exit 2: the configuration does not check (the units are installed, not enabled);
# exit 3: --start gave up waiting for the open session to end (evterm is upgraded, the
# running daemon not restarted).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/evterm  # [update] root_dir of the configuration (docs/updates.md)
RELEASES=$PREFIX/releases
CURRENT=$PREFIX/current
LEGACY_VENV=$PREFIX/venv  # before the release layout; a link to current/venv now
BIN_LINK=/usr/local/bin/evterm
CONF_DIR=/etc/evterm
STATE_DIR=/var/lib/evterm
PINS_FILE=$STATE_DIR/pins.json
UNIT_DIR=/etc/systemd/system
UNITS=(evterm.service evterm-ui.service)
UPDATE_UNITS=(evterm-update.service evterm-update.path)
CONSTRAINTS=$REPO/constraints/board.txt
APT_PACKAGES=(
  python3 python3-venv python3-dev build-essential swig libpcsclite-dev  # venv; pyscard build
  pcscd libpcsclite1 libccid                                              # PC/SC, USB readers
  libgl1-mesa-dri libgbm1 libegl1 libgles2 libdrm2 libmtdev1              # Kivy/SDL2 on KMS/DRM
  util-linux                                                              # runuser
)

DRY_RUN=0
START=0
MQTT_TOOLS=0
PACKAGES=1
WHEELHOUSE=""
IDLE_TIMEOUT_S=900
usage_error() {
  echo "install.sh: $* (allowed: --dry-run --start --with-mqtt-tools --wheelhouse DIR" \
       "--idle-timeout-s S --skip-packages)" >&2
  exit 1
}
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --start) START=1 ;;
    --with-mqtt-tools) MQTT_TOOLS=1 ;;
    --skip-packages) PACKAGES=0 ;;
    --wheelhouse)
      [ $# -ge 2 ] || usage_error "--wheelhouse needs a folder"
      WHEELHOUSE=$(cd "$2" 2>/dev/null && pwd) || usage_error "--wheelhouse: no folder $2"
      shift ;;
    --idle-timeout-s)
      [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]] || usage_error "--idle-timeout-s needs whole seconds"
      IDLE_TIMEOUT_S=$2
      shift ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) usage_error "unknown option $1" ;;
  esac
  shift
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
BUILD=""
cleanup() { [ -z "$BUILD" ] || rm -rf "$BUILD"; }
trap cleanup EXIT

# ---- 1. packages --------------------------------------------------------------------
step "packages: ${APT_PACKAGES[*]}"
if [ "$PACKAGES" -eq 0 ]; then
  note "left out (--skip-packages)"
else
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
fi

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
ensure_user evterm $STATE_DIR dialout
ensure_user evterm-ui /var/lib/evterm-ui video,render,input,evterm

# ---- 3. virtualenv --------------------------------------------------------------------
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/terminal/__init__.py")
[ -n "$VERSION" ] || { echo "install.sh: no __version__ in $REPO/terminal/__init__.py" >&2; exit 1; }
VENV=$RELEASES/$VERSION/venv
PIP_SOURCE=()
if [ -n "$WHEELHOUSE" ]; then
  # only the wheelhouse: no index, no pip configuration or PIP_* settings of this machine
  for name in $(compgen -e); do [[ "$name" == PIP_* ]] && unset "$name"; done
  export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
  PIP_SOURCE=(--no-index --find-links "$WHEELHOUSE")
fi
step "virtualenv: $VENV with evterm $VERSION [ui], pinned by $CONSTRAINTS${WHEELHOUSE:+, offline from $WHEELHOUSE}"
run install -d -m 0755 -o root -g root "$PREFIX" "$PREFIX/docs" "$RELEASES" "$RELEASES/$VERSION"
if [ -d "$LEGACY_VENV" ] && [ ! -L "$LEGACY_VENV" ]; then
  note "$LEGACY_VENV: an old board's venv; replaced by the release layout (docs/updates.md)"
fi
if [ -x "$VENV/bin/python" ]; then
  note "$VENV exists; upgrading evterm in it"
else
  run python3 -m venv "$VENV"
fi
wheel=""
[ -n "$WHEELHOUSE" ] && wheel=$(find "$WHEELHOUSE" -maxdepth 1 -name "evterm-$VERSION-py3-none-any.whl" | head -n 1)
if [ -n "$wheel" ]; then
  note "evterm's wheel from the wheelhouse: $wheel"
else
  BUILD=$(mktemp -d /tmp/evterm-build.XXXXXX)
  wheel="$BUILD/dist/evterm-$VERSION-py3-none-any.whl"
  note "building evterm's wheel from a copy of $REPO in $BUILD (removed afterwards)"
  run mkdir "$BUILD/src"
  run tar -C "$REPO" --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./build \
    --exclude=./dist --exclude='*.egg-info' --exclude=__pycache__ -cf "$BUILD/src.tar" .
  run tar -C "$BUILD/src" -xf "$BUILD/src.tar"
  run "$VENV/bin/python" -m pip wheel -q --no-deps "${PIP_SOURCE[@]}" --wheel-dir "$BUILD/dist" \
    "$BUILD/src"
fi
run "$VENV/bin/python" -m pip install -q "${PIP_SOURCE[@]}" --constraint "$CONSTRAINTS" "$wheel[ui]"
# the same version number again (a rebuilt checkout): replace evterm's own files
run "$VENV/bin/python" -m pip install -q --no-deps --force-reinstall "${PIP_SOURCE[@]}" "$wheel"
run touch "$RELEASES/$VERSION/.complete"
# current -> releases/VERSION: a new link renamed over the old one (atomic)
run ln -sfn "releases/$VERSION" "$PREFIX/current.new"
run mv -Tf "$PREFIX/current.new" "$CURRENT"
if [ -d "$LEGACY_VENV" ] && [ ! -L "$LEGACY_VENV" ]; then
  run rm -rf "$LEGACY_VENV"
fi
run ln -sfn current/venv "$LEGACY_VENV"  # what an old board's scripts name keeps working
VENV=$CURRENT/venv
run install -d -m 0755 "$(dirname "$BIN_LINK")"
run ln -sfn "$VENV/bin/evterm" "$BIN_LINK"
run install -m 0644 "$REPO"/docs/*.md "$PREFIX/docs/"

# ---- 4. configuration -----------------------------------------------------------------
step "configuration: $CONF_DIR/evterm.toml (root:evterm 0640), kept when present; $PINS_FILE"
run install -d -m 0750 -o root -g evterm "$CONF_DIR"
install_once() {  # template, target
  if [ -e "$2" ]; then
    note "$2 exists; left as it is"
  else
    run install -m 0640 -o root -g evterm "$1" "$2"
  fi
}
install_once "$REPO/systemd/evterm.toml" "$CONF_DIR/evterm.toml"
install_once "$REPO/hw_mocks/tariffs/de_dc_hpc_adhoc.json" "$CONF_DIR/tariff.json"
# private keys: the daemon's user alone (group evterm holds the touchscreen's user)
if [ -d "$CONF_DIR" ]; then
  while IFS= read -r -d '' key; do
    run chown evterm:evterm "$key"
    run chmod 0600 "$key"
  done < <(find "$CONF_DIR" -maxdepth 1 -type f \( -name '*.key' -o -name '*key*.pem' \) -print0)
fi
# the operator's TUF root: the trust anchor of signed updates (docs/updates.md)
ROOT_METADATA=$PREFIX/update/metadata/root.json
if [ -e "$ROOT_METADATA" ] || [ -L "$ROOT_METADATA" ]; then
  note "$ROOT_METADATA exists; left as it is (python-tuf keeps it up to date)"
elif [ -f "$CONF_DIR/update-root.json" ]; then
  run install -d -m 0755 -o root -g root "$PREFIX/update" "$PREFIX/update/metadata"
  run install -m 0644 -o root -g root "$CONF_DIR/update-root.json" "$ROOT_METADATA"
else
  note "no $CONF_DIR/update-root.json: signed updates need the operator's root.json there"
fi
run install -d -m 0700 -o evterm -g evterm "$STATE_DIR"
if [ -e "$PINS_FILE" ]; then
  note "$PINS_FILE exists; left as it is"
else
  note "$PINS_FILE: no technician yet (evterm service set-pin adds them)"
  if [ "$DRY_RUN" -eq 0 ]; then
    printf '{"technicians": {}}\n' > "$PINS_FILE.tmp"
  fi
  run install -m 0600 -o evterm -g evterm "$PINS_FILE.tmp" "$PINS_FILE"
  run rm -f "$PINS_FILE.tmp"
fi
config_ok=1
printf '+ %s\n' "runuser -u evterm -- $VENV/bin/evterm config check $CONF_DIR/evterm.toml"
if [ "$DRY_RUN" -eq 0 ] && ! (cd / && runuser -u evterm -- "$VENV/bin/evterm" config check \
    "$CONF_DIR/evterm.toml"); then
  config_ok=0
fi

# ---- 5. systemd units -----------------------------------------------------------------
step "systemd units: ${UNITS[*]} ${UPDATE_UNITS[*]} into $UNIT_DIR, daemon-reload, enable"
for unit in "${UNITS[@]}" "${UPDATE_UNITS[@]}"; do
  run install -m 0644 "$REPO/systemd/$unit" "$UNIT_DIR/$unit"
done
booted=0  # systemd runs as PID 1 (not a chroot or a container building an image)
{ [ -d /run/systemd/system ] || [ "$DRY_RUN" -eq 1 ]; } && booted=1
if [ "$booted" -eq 1 ]; then
  run systemctl daemon-reload
else
  note "systemd is not running here (an image build?): daemon-reload left to the boot"
fi
if [ "$config_ok" -eq 0 ]; then
  echo "install.sh: $CONF_DIR/evterm.toml does not check as the evterm user (above);" \
       "the units are installed but not enabled or started. Fix it (docs/configuration.md)," \
       "then run this script again." >&2
  exit 2
fi
run systemctl enable "${UNITS[@]}" "${UPDATE_UNITS[@]}"
if [ "$START" -eq 0 ]; then
  note "start with: systemctl start ${UNITS[*]}"
elif [ "$booted" -eq 0 ]; then
  note "not started: systemd is not running here"
else
  if [ "$DRY_RUN" -eq 0 ] && systemctl is-active --quiet evterm.service; then
    note "evterm is running: waiting until no session is open (at most $IDLE_TIMEOUT_S s)"
    printf '+ %s\n' "$VENV/bin/evterm service --config $CONF_DIR/evterm.toml wait-idle --timeout-s $IDLE_TIMEOUT_S"
    "$VENV/bin/evterm" service --config "$CONF_DIR/evterm.toml" wait-idle \
      --timeout-s "$IDLE_TIMEOUT_S" && idle_rc=0 || idle_rc=$?
    if [ "$idle_rc" -eq 1 ]; then
      echo "install.sh: a session is still open after $IDLE_TIMEOUT_S s; evterm $VERSION is" \
           "installed, the running daemon was not restarted. Restart it once the" \
           "session has ended: systemctl restart ${UNITS[*]}" >&2
      exit 3
    fi
    [ "$idle_rc" -eq 0 ] || note "the daemon does not answer: restarting it"
  fi
  run systemctl restart "${UNITS[@]}"
fi

step "done"
note "status: systemctl status evterm; logs: journalctl -u evterm -u evterm-ui"
note "a technician's PIN: runuser -u evterm -- evterm service set-pin --card UID --pins-file $PINS_FILE"
note "SSH technicians need group evterm for the service menu: usermod -aG evterm LOGIN"
