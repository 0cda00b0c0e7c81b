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
if state=$(kumo info "$VM" --json 2>/dev/null | node -e 'let s="";process.stdin.on("data",(c)=>s+=c).on("end",()=>console.log(JSON.parse(s).state))'); then
  echo "quickstart: instance $VM exists ($state)"
  [ "$state" = running ] || kumo start "$VM"
else
  kumo launch "$IMAGE" --name "$VM"
fi
kumo exec "$VM" -- uname -a
kumo exec "$VM" -- cloud-init status
kumo list
echo
echo "quickstart: '$VM' is running. Try: node bin/kumo.js ssh $VM    (delete it with: node bin/kumo.js delete $VM --force)"
echo "quickstart: to type 'kumo' instead of 'node bin/kumo.js', run: npm link"
