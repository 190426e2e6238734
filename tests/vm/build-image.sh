#!/usr/bin/env bash
# Builds the VM tier's throw-away Debian 12 machine: a root disk made with `mkfs.ext4 -d` (no loop mount)
# plus the kernel and initrd for a direct kernel boot.  Called by tests/vm/run.py on a cache miss:
#   build-image.sh OUTDIR WHEELDIR PACKAGE...
# WHEELDIR holds wheels and a requirements.txt: installed (natively, in a chroot) into the virtualenv that
# `./dev setup` in the guest finds at /root/composer/.venv; under TCG that install would take minutes.
# OUTDIR gets root.img, vmlinuz, initrd.img, packages.txt.  Needs root, debootstrap, e2fsprogs, network
# to Debian's mirror ($COMPOSER_VM_MIRROR).  The guest's test logic is NOT baked in: the image only runs
# /mnt/in/guest.sh from the run's read-only share, so editing the tier's scripts needs no rebuild.
set -euo pipefail
out=$1 wheels=$2; shift 2
mirror=${COMPOSER_VM_MIRROR:-http://deb.debian.org/debian}
# Not under a path containing /composer: debootstrap mounts /proc and /sys in the target while it
# runs, and the test suite's leak check counts mounts under such paths as composer's.
work=$(mktemp -d /var/tmp/cmpvm-build.XXXXXX)
root=$work/root
cleanup() {
  # debootstrap unmounts what it mounted; make sure nothing is left if it died half-way
  local m
  for m in $(awk -v r="$root" '$5 ~ "^"r {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" || true; done
  rm -rf "$work"
}
trap cleanup EXIT

pkgs=$(IFS=,; echo "$*")
echo "debootstrap bookworm from $mirror: $pkgs"
if ! debootstrap --variant=minbase --include="$pkgs" bookworm "$root" "$mirror"; then
  tail -40 "$root/debootstrap/debootstrap.log" >&2 || true
  exit 1
fi

echo composer-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 composer-vm\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# A fixed machine-id: every boot of the snapshot is the same machine, not a systemd "first boot".
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"; echo >>"$root/etc/machine-id"
cat >"$root/etc/fstab" <<'FSTAB'
/dev/vda  /           ext4  rw,errors=remount-ro  0 1
in        /mnt/in     9p    trans=virtio,version=9p2000.L,ro,msize=262144      0 0
wheels    /mnt/wheels 9p    trans=virtio,version=9p2000.L,ro,msize=262144      0 0
out       /mnt/out    9p    trans=virtio,version=9p2000.L,rw,msize=262144      0 0
FSTAB
mkdir -p "$root/mnt/in" "$root/mnt/wheels" "$root/mnt/out"
printf '9p\n9pnet_virtio\n' >"$root/etc/modules-load.d/9p.conf"

# The one unit the image owns: after boot, run the run's guest script (from the share), then power off.
cat >"$root/etc/systemd/system/composer-vm-test.service" <<'UNIT'
[Unit]
Description=composer VM test tier (runs /mnt/in/guest.sh, then powers off)
After=multi-user.target
RequiresMountsFor=/mnt/in /mnt/wheels /mnt/out

[Service]
Type=oneshot
ExecStart=/bin/sh /mnt/in/guest.sh
ExecStopPost=/bin/systemctl --no-block poweroff
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/composer-vm-test.service "$root/etc/systemd/system/multi-user.target.wants/composer-vm-test.service"
# Nothing periodic may start in the middle of a test run.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
         man-db.timer dpkg-db-backup.timer logrotate.timer systemd-tmpfiles-clean.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done

# composer's dependencies, where `./dev setup` in the guest looks for its virtualenv: it then only adds
# composer itself (editable) from the run's source snapshot.
mkdir -p "$root/root/composer" "$root/tmp/wheels"
cp "$wheels"/*.whl "$wheels/requirements.txt" "$root/tmp/wheels/"
inchroot() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root chroot "$root" "$@"; }  # no host PIP_* settings
inchroot /usr/bin/python3 -m venv /root/composer/.venv
inchroot /root/composer/.venv/bin/pip install -q --disable-pip-version-check --no-index \
    --find-links /tmp/wheels -r /tmp/wheels/requirements.txt
rm -rf "$root/tmp/wheels"

kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$root/boot/initrd.img-${kernel##*/vmlinuz-}
[[ -f $initrd ]] || { echo "no initrd for $kernel in the image" >&2; exit 1; }
mkdir -p "$out"
cp "$kernel" "$out/vmlinuz"
cp "$initrd" "$out/initrd.img"
chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' >"$out/packages.txt"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

# Room for the tests' images, containers and a venv: the disk is used with snapshot=on, so the file
# on the host stays as built and only what the guest writes costs space (in a temporary overlay).
size_mb=$(( $(du -sm "$root" | cut -f1) + 4096 ))
truncate -s "${size_mb}M" "$out/root.img"
mkfs.ext4 -q -F -L composer-vm -d "$root" "$out/root.img"
echo "image: $out/root.img (${size_mb} MB, $(wc -l <"$out/packages.txt") packages, kernel ${kernel##*/})"
