"""The escape battery: what a root process in a default container (`composer container run --rm
busybox`: default capabilities, seccomp profile, masks, device policy, bridge network) must not be
able to do to the host. Each probe is one case, run in its own container; it prints "DENIED: ..."
for every attempt that failed and "ESCAPED: ..." for any that worked. Only what docker's default
policy denies is asserted (docker grants NET_RAW, MKNOD, CHROOT, ptrace of the container's own
processes: those are not probed as escapes; mknod of a disk succeeds as in docker, opening it
must not). Runs unchanged on cgroup v1 (this host: the devices controller) and v2 (the VM tier:
the BPF device program, a private cgroup namespace)."""

from __future__ import annotations

import glob
import os
import re
import socket

import pytest

from tests.integration import cgroup_drivers

pytestmark = pytest.mark.root

NOT_PERMITTED = r"Operation not permitted|Permission denied|permission denied"
READ_ONLY = r"Read-only file system"

# try CMD...: runs it, prints DENIED (it failed) or ESCAPED (it worked) with its output. Device
# probes only open (`exec 3<`): should a policy ever break, no host disk or port is read or written.
PRELUDE = r"""
try() { if out=$("$@" 2>&1 </dev/null); then echo "ESCAPED: $* -> $out"; else echo "DENIED: $* -> $out"; fi; }
nonempty() { [ -n "$(head -c 64 "$1" 2>/dev/null)" ]; }
"""


def host_disks() -> list[tuple[str, str]]:
    """(name, major:minor) of every block device the host lists in /sys/block."""
    out = []
    for path in sorted(glob.glob("/sys/block/*/dev")):
        with open(path) as f:
            out.append((path.split("/")[3], f.read().strip()))
    return out


def _disks_script() -> str:
    lines = []
    for i, (name, dev) in enumerate(host_disks()):
        major, minor = dev.split(":")
        lines.append(f"mknod /tmp/disk{i} b {major} {minor} || echo 'MKNOD FAILED {name}'")
        lines.append(f"try sh -c 'exec 3</tmp/disk{i}'")  # open for reading and for writing,
        lines.append(f"try sh -c 'exec 3>>/tmp/disk{i}'")  # never a byte read or written
    return "\n".join(lines)


CHAR_DEVICES = {"mem": "1 1", "kmem": "1 2", "port": "1 4", "kmsg": "1 11", "tty1": "4 1", "kvm": "10 232",
                "fuse": "10 229", "rtc0": "252 0"}
DEV_DEFAULTS = "null|zero|full|random|urandom|tty|console|ptmx|pts|shm|mqueue|fd|stdin|stdout|stderr"

# id -> (script, the reason every DENIED line must give). {pid} is the test's host pid, {marker}
# a host file the container must not see.
PROBES = {
    "open-every-host-disk": ("__DISKS__", r"Operation not permitted"),
    "open-host-char-devices": ("\n".join(f"mknod /tmp/{n} c {mm} && try sh -c 'exec 3</tmp/{n}'"
                                         for n, mm in CHAR_DEVICES.items()), r"Operation not permitted"),
    "dev-holds-only-docker-defaults": (f"for n in $(ls -A /dev); do case $n in {DEV_DEFAULTS}) ;; *) "
                                       "echo \"ESCAPED: /dev/$n\";; esac; done; echo 'DENIED: no other node'", ""),
    "read-proc-kcore": ("try nonempty /proc/kcore", ""),
    "read-proc-keys": ("try nonempty /proc/keys", ""),  # keyctl itself: test_seccomp (EPERM)
    "read-sys-firmware": ("try sh -c '[ -n \"$(ls -A /sys/firmware)\" ]'", ""),
    # absent on a kernel without CONFIG_MAGIC_SYSRQ (this host): nothing to write then
    "write-sysrq-trigger": ("try sh -c 'echo h > /proc/sysrq-trigger'", READ_ONLY + "|nonexistent directory"),
    "write-kernel-core-pattern": ("try sh -c 'echo \"|/tmp/x\" > /proc/sys/kernel/core_pattern'", READ_ONLY),
    "write-proc-sys-vm": ("try sh -c 'echo 3 > /proc/sys/vm/drop_caches'", READ_ONLY),
    "write-sysfs": ("for f in /sys/kernel/mm/transparent_hugepage/enabled /sys/power/state /sys/kernel/uevent_helper "
                    "/sys/kernel/profiling; do [ -e $f ] && try sh -c \"echo x > $f\"; done", READ_ONLY),
    "load-kernel-module": ("echo junk > /tmp/m.ko; try insmod /tmp/m.ko", NOT_PERMITTED),
    "mount-proc": ("mkdir -p /mnt/p; try mount -t proc proc /mnt/p", NOT_PERMITTED),
    "mount-sysfs": ("mkdir -p /mnt/s; try mount -t sysfs sysfs /mnt/s", NOT_PERMITTED),
    "mount-tmpfs-over-proc-sys": ("try mount -t tmpfs x /proc/sys", NOT_PERMITTED),
    "remount-proc-sys-rw": ("try mount -o remount,rw /proc/sys", NOT_PERMITTED),
    "unmount-a-mask": ("try umount /proc/kcore; try umount /sys/firmware", NOT_PERMITTED),
    "mount-cgroupfs": ("mkdir -p /mnt/c; try mount -t cgroup2 none /mnt/c; try mount -t cgroup -o memory none /mnt/c",
                       NOT_PERMITTED),
    "write-cgroupfs": ("for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs; do if [ -e $f ]; then "
                       "try sh -c \"echo $$ > $f\"; fi; done", READ_ONLY),
    "see-host-processes": ("try kill -0 {pid}; n=$(ls -d /proc/[0-9]* | wc -l); "
                           "if [ $n -le 4 ]; then echo \"DENIED: only $n processes\"; else echo \"ESCAPED: $n\"; fi",
                           r"No such process|only \d processes"),
    "see-host-files": ("try cat {marker}", r"No such file or directory"),
    "unshare-user-namespace": ("try unshare -U true; try unshare -U -r true", NOT_PERMITTED),
    "unshare-mount-namespace": ("try unshare -m true; try nsenter -t 1 -m true", NOT_PERMITTED),
    # busybox's date exits 0 when settimeofday fails: the clock itself is checked
    "set-clock": ("try sh -c 'date -s 2001-01-01 2>&1 >/dev/null; [ \"$(date +%Y)\" = 2001 ]'", NOT_PERMITTED),
    "reboot": ("try reboot -f; echo 'DENIED: still running'", NOT_PERMITTED + "|still running"),
    "set-hostname": ("try hostname cmp-escaped", NOT_PERMITTED),
    "configure-network": ("try ip addr add 10.213.0.1/32 dev lo; try ip link set lo mtu 1280", NOT_PERMITTED),
}


@pytest.fixture(scope="module")
def marker(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("escape") / "host-only"
    path.write_text("the host's\n")
    return str(path)


def check(out: str, reason: str) -> None:
    assert "ESCAPED" not in out, out
    assert "MKNOD FAILED" not in out, out  # docker allows mknod: the device policy must be what stops it
    denied = [line for line in out.splitlines() if line.startswith("DENIED: ")]
    assert denied, out
    for line in denied:
        assert re.search(reason, line), (reason, out)


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_a_default_container_cannot(ccli, marker, probe):
    script, reason = PROBES[probe]
    script = _disks_script() if script == "__DISKS__" else script.format(pid=os.getpid(), marker=marker)
    hostname = socket.gethostname()
    r = ccli("container", "run", "--rm", ccli.image, "sh", "-c", PRELUDE + script)
    assert r.returncode == 0, (r.stdout, r.stderr)
    check(r.stdout, reason)
    assert socket.gethostname() == hostname


def test_a_host_network_container_cannot_write_sys(ccli):
    """Not a default, but the same walls: with the host's netns, /sys and everything mounted below
    it inside are read-only (a bind of the host's /sys would carry its cgroup, debugfs, tracefs and
    bpf mounts writable), so the container cannot leave its cgroup through cgroup.procs either."""
    script = PRELUDE + ("awk '$5 ~ \"^/sys\" {print $5, $6}' /proc/self/mountinfo | while read -r point opts; do "
                        "case ,$opts, in *,ro,*) echo \"DENIED: $point ro\";; *) echo \"ESCAPED: $point $opts\";; "
                        "esac; done; for f in $(find /sys/fs/cgroup -name cgroup.procs); do "
                        "try sh -c \"echo $$ > $f\"; done")
    r = ccli("container", "run", "--rm", "--network", "host", ccli.image, "sh", "-c", script)
    assert r.returncode == 0, (r.stdout, r.stderr)
    check(r.stdout, r" ro$|" + READ_ONLY)
    assert "cgroup.procs" in r.stdout, r.stdout


def test_the_battery_has_26_probes_and_every_disk():
    assert len(PROBES) == 26
    assert host_disks(), "the host lists no block device in /sys/block"


@pytest.mark.parametrize("kind", cgroup_drivers.kinds())
def test_disks_stay_shut_with_each_cgroup_driver(runtime, make_spec, monkeypatch, kind):
    """The disk probe with each driver this host has. On the hybrid host's cgroup2 driver the
    container is in no v1 devices cgroup of its own: the BPF program alone keeps the disks shut."""
    from composer.runtime.cgroups import base as cgroups

    monkeypatch.setattr(cgroups, "_DEFAULT", cgroup_drivers.make(kind))
    spec = make_spec("sh", "-c", PRELUDE + _disks_script())
    runtime.run(spec)
    info = runtime.wait(spec.id, timeout=30)
    out = "".join(r.line for r in runtime.logs(spec.id))
    assert info.exit_code == 0, out
    check(out, r"Operation not permitted")


@pytest.fixture
def ccli(cli, runtime, busybox_image):
    cli.image = busybox_image
    return cli
