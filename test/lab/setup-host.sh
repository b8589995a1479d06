#!/bin/sh
# Installs what the lab ORCHESTRATOR (this machine, not the lab hosts) needs, and groovy for the
# Jenkinsfile test.
# Idempotent: installs only what is missing; runs `apt-get update` at most once, and only
# when something has to be installed. Must run as root on Debian 12.
set -eu

if [ "$(id -u)" != 0 ]; then
  echo "setup-host.sh: must run as root" >&2
  exit 1
fi

# package -> a command it provides (checked before asking apt)
need=""
check() { command -v "$2" >/dev/null 2>&1 || dpkg -s "$1" >/dev/null 2>&1 || need="$need $1"; }
check debootstrap debootstrap
check systemd-container systemd-nspawn
check iproute2 ip
check openssh-client ssh
check rsync rsync
check git git
check curl curl
check e2fsprogs mkfs.ext4
check mount losetup
check util-linux setsid
# not the lab's: the Jenkinsfile test parses it with the real Groovy parser
check groovy groovy
# not the lab's: the report tests render the SVG to PNG, and check every report with expat
check librsvg2-bin rsvg-convert
check python3 python3

if [ -z "$need" ]; then
  echo "setup-host.sh: everything present"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Update the package lists only if they are missing or a package cannot be found.
if ! apt-get install -y --no-install-recommends $need; then
  apt-get update
  apt-get install -y --no-install-recommends $need
fi
echo "setup-host.sh: installed:$need"
