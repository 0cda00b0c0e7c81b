#!/usr/bin/env bash
# The quick start: set up kumo on this machine, build a Debian 12 image from Debian's packages
# (once; later runs reuse it), launch a VM from it and run a command in it.
#   bash scripts/quickstart.sh
# Needs root for the install and the image build (debootstrap, chroot); launching VMs does not.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
kumo() { node bin/kumo.js "$@"; }

IMAGE=debian-12-kumo
VM=demo
if ! kumo image info "$IMAGE" >/dev/null 2>&1; then
  echo "quickstart: building image $IMAGE from Debian packages (a few minutes, once)"
  kumo image build --name "$IMAGE"
fi
if kumo info "$VM" >/dev/null 2>&1; then
  echo "quickstart: instance $VM exists; starting it if it is stopped"
  kumo start "$VM" || true
else
  kumo launch "$IMAGE" --name "$VM"
fi
kumo exec "$VM" -- uname -a
kumo exec "$VM" -- cloud-init status
kumo list
echo
echo "quickstart: '$VM' is running. Try: node bin/kumo.js ssh $VM    (delete it with: node bin/kumo.js delete $VM --force)"
