#!/usr/bin/env bash
# Installs everything kumo and its tests need on Debian 12 / Ubuntu 24.04, then builds kumo.
# Idempotent: a second run installs nothing and only rebuilds. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  qemu-system-x86 qemu-utils ovmf            # the QEMU driver, overlays, UEFI guests
  openssh-client                              # ssh, exec, cp, readiness
  debootstrap grub-pc-bin grub-efi-amd64-bin grub2-common grub-common e2fsprogs dosfstools mtools fdisk  # kumo image build
  zstd xz-utils                               # compressed downloads
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients  # the libvirt driver
  libxml2-utils                               # xmllint, which virt-xml-validate (libvirt-clients) runs
  genisoimage xorriso libarchive-tools fuseiso fuse cloud-image-utils  # tests and benches: independent ISO readers, cloud-localds
  gpgv gpg gpg-agent gpgconf                  # gpgv verifies signed checksum files; gpg (with its agent) makes the tests' signing keys
  python3-minimal                             # the unit test that calls the clone identity's RNG reseed as the guest does
  util-linux mount procps iproute2 passwd kmod ca-certificates curl openssl  # mount, losetup, pgrep, ss, useradd, modprobe; curl for the download bench; openssl for the tests' TLS certificates
  qemu-system-common                          # virtiofsd (/usr/lib/qemu/virtiofsd, not on PATH): shared folders over virtiofs
  vde-switch                                  # vde_switch: one switch per private network (kumo network)
  openssh-server tmux                         # tests: a real sshd on 127.0.0.1 for kumo ssh-config; a real terminal for the progress lines
)
# Packages the tests rely on that every Debian system has (Essential: yes), so setup installs none
# of them; scripts/programs.txt may name them (test/integration/scripts/programs.test.ts checks
# that they really are Essential).
ESSENTIAL=(coreutils util-linux bash dash dpkg tar gzip libc-bin perl-base)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The tests start their own sshd on 127.0.0.1 (a port of their own); the package's service must not listen on the host.
if [ -e /lib/systemd/system/ssh.service ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
elif [ -x /etc/init.d/ssh ]; then
  $SUDO /etc/init.d/ssh stop >/dev/null 2>&1 || true
  command -v update-rc.d >/dev/null && $SUDO update-rc.d ssh disable >/dev/null 2>&1 || true
fi

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: kumo needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

npm ci --no-audit --no-fund
npm run build
echo "setup: done"
