"""The VM test tier (`./dev test-v2 [pytest args]`): the root tests that concern cgroups, devices, limits
and whole stacks, run inside a throw-away Debian 12 VM with pure cgroup v2 and systemd as PID 1 -- the
host most users have, which this machine (cgroup v1 hybrid, no systemd) is not.

QEMU with TCG (this machine's /dev/kvm cannot run a stock kernel), a direct boot of the image's own kernel,
no network device.  The root disk (tests/vm/build-image.sh, cached by a hash of its inputs) is used with
snapshot=on, so every run starts from the same machine.  Three 9p shares: `in` (a snapshot of the
worktree's current files, committed or not, and the run's scripts; read-only), `wheels` (from `pip
download` on the host; read-only) and `out` (logs, exit codes, junit xml).  The guest (guest.sh) runs the
selection from a root login session, then the service subset from a plain service, and powers off.
The tests see CI=true (never skip) and COMPOSER_VM_PHASE=login|service (where they run from).

Environment: COMPOSER_VM_CGROUP=v2|v1 (v1 boots systemd's hybrid layout, like this host, to tell a v2
failure from slowness), COMPOSER_VM_CACHE (default /var/tmp/composer-vm), COMPOSER_VM_TIMEOUT (the VM's
whole run, s), COMPOSER_VM_BOOT_TIMEOUT (to the guest script's first line), COMPOSER_VM_TEST_TIMEOUT (per
test), COMPOSER_VM_KEEP=1 (keep the run dir, with the console log), COMPOSER_VM_MIRROR (for debootstrap).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = Path(os.environ.get("COMPOSER_VM_CACHE", "/var/tmp/composer-vm"))
CGROUP = os.environ.get("COMPOSER_VM_CGROUP", "v2")
TIMEOUT = int(os.environ.get("COMPOSER_VM_TIMEOUT", "1800"))
BOOT_TIMEOUT = int(os.environ.get("COMPOSER_VM_BOOT_TIMEOUT", "300"))
TEST_TIMEOUT = int(os.environ.get("COMPOSER_VM_TEST_TIMEOUT", "900"))
KEEP = os.environ.get("COMPOSER_VM_KEEP") == "1"

# What the VM itself needs on top of dev's DEBS (which make `./dev setup` inside run offline).
VM_PACKAGES = ["linux-image-amd64", "systemd-sysv", "udev", "dbus", "libpam-systemd", "kmod", "e2fsprogs",
               "containernetworking-plugins",  # skopeo needs a container-network-stack: debootstrap cannot choose one
               "python3", "python3-venv"]
# cp311 wheels for Debian 12's python3.11 (glibc 2.36), whatever Python runs this script.
WHEEL_TAGS = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
              "--abi", "cp311", "--abi", "abi3", "--abi", "none",
              "--platform", "manylinux_2_36_x86_64", "--platform", "manylinux_2_28_x86_64",
              "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64", "--platform", "any"]


def say(msg: str) -> None:
    print(f"\033[1m==> test-v2:\033[0m {msg}", file=sys.stderr, flush=True)


class TierError(Exception):
    """The tier itself could not run (no image, VM did not boot, timed out): always a failure."""


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


# ---- the image -------------------------------------------------------------------------------------

def packages() -> list[str]:
    m = re.search(r"^DEBS=\(([^)]*)\)", (ROOT / "dev").read_text(), re.M)
    debs = m.group(1).split() if m else []
    return sorted(set(VM_PACKAGES + debs))


def ensure_image(wheels: Path) -> Path:
    pkgs = packages()
    script = HERE / "build-image.sh"
    code = "\n".join(ln for ln in script.read_text().splitlines() if not ln.lstrip().startswith("#"))
    key = digest(" ".join(pkgs), code, wheels.name)  # a comment edit does not rebuild the image
    img = CACHE / f"image-{key}"
    if (img / "root.img").is_file():
        return img
    say(f"building the VM image (cache miss, {len(pkgs)} packages + dependencies, a few minutes): {img}")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f"image-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    t = time.monotonic()
    with open(CACHE / "build.log", "w") as log:
        rc = subprocess.run([str(script), str(tmp), str(wheels), *pkgs], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL).returncode
    if rc != 0:
        tail = (CACHE / "build.log").read_text(errors="replace").splitlines()[-15:]
        raise TierError("building the VM image failed:\n  " + "\n  ".join(tail) + f"\n(full log: {CACHE}/build.log)")
    tmp.rename(img)
    for old in CACHE.glob("image-*"):
        if old != img:
            shutil.rmtree(old, ignore_errors=True)
    say(f"image built in {time.monotonic() - t:.0f} s")
    return img


def requirements() -> list[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(meta["build-system"]["requires"]) + list(meta["project"]["dependencies"])
    for name, extra in meta["project"].get("optional-dependencies", {}).items():
        if name != "oracle":  # the differential tier's reference binary: host only (pyproject.toml)
            reqs += extra
    return sorted(set(reqs + ["wheel"]))


def ensure_wheels() -> Path:
    reqs = requirements()
    wheels = CACHE / f"wheels-{digest(' '.join(reqs), ' '.join(WHEEL_TAGS), 'with requirements.txt')}"
    if (wheels / ".complete").is_file():
        return wheels
    say(f"pip download of {len(reqs)} requirements for the VM's Python 3.11")
    shutil.rmtree(wheels, ignore_errors=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                        "-d", str(wheels), *WHEEL_TAGS, *reqs], capture_output=True, text=True)
    if r.returncode != 0:
        raise TierError(f"pip download failed:\n{r.stdout}{r.stderr}")
    (wheels / "requirements.txt").write_text("\n".join(reqs) + "\n")
    (wheels / ".complete").touch()
    for old in CACHE.glob("wheels-*"):
        if old != wheels:
            shutil.rmtree(old, ignore_errors=True)
    return wheels


# ---- what runs -------------------------------------------------------------------------------------

def selection() -> dict[str, list[str]]:
    """tests/vm/selection: `[login]` and `[service]` sections of paths, node ids or globs; `!NODEID`
    deselects a test of a selected file (one that asserts a timing, which TCG cannot keep)."""
    phases: dict[str, list[str]] = {"login": [], "service": []}
    phase = "login"
    for line in (HERE / "selection").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            phase = line[1:-1]
            continue
        if line.startswith("!"):
            phases[phase].append("--deselect=" + line[1:].strip())
            continue
        path, _, rest = line.partition("::")
        found = sorted(glob.glob(str(ROOT / path)))
        if not found:
            say(f"selection: nothing in this tree matches {path} (left out)")
        entries = [str(Path(f).relative_to(ROOT)) + (f"::{rest}" if rest else "") for f in found]
        phases[phase] += [e for e in entries if e not in phases[phase]]  # a glob may match a listed file
    return phases


def plan(args: list[str]) -> dict[str, list[str]]:
    """pytest args per phase: paths/node ids on the command line replace the selection of both phases;
    options (-k, -x, -v ...) are added to both."""
    targets = [a for a in args if not a.startswith("-") and (a.startswith("tests") or "::" in a or a.endswith(".py"))]
    options = [a for a in args if a not in targets]
    phases = {p: targets for p in ("login", "service")} if targets else selection()
    phases = {p: t for p, t in phases.items() if any(not a.startswith("-") for a in t)}
    common = ["-p", "no:cacheprovider", "-v", "--durations=15", f"--timeout={TEST_TIMEOUT}"]
    return {p: common + options + [f"--junitxml=/mnt/out/{p}.xml"] + t for p, t in phases.items() if t}


def snapshot_source(dest: Path) -> None:
    """The worktree's current files, committed or not (what `git ls-files` sees, minus ignored ones)."""
    r = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       capture_output=True)
    if r.returncode != 0:
        raise TierError(f"the source tree must be a git checkout: {r.stderr.decode(errors='replace').strip()}")
    files = r.stdout.split(b"\0")
    for rel in filter(None, (f.decode() for f in files)):
        src = ROOT / rel
        if not src.exists() and not src.is_symlink():
            continue  # deleted but not yet committed
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel, follow_symlinks=False)


def write_scripts(inp: Path, phases: dict[str, list[str]]) -> None:
    shutil.copy2(HERE / "guest.sh", inp / "guest.sh")
    where = {"login": "a root login session (runuser -l root)", "service": "a plain systemd service"}
    for phase, args in phases.items():
        (inp / f"{phase}.sh").write_text(
            f'{{ echo "-- {where[phase]}: /proc/self/cgroup"; cat /proc/self/cgroup; }} >>/mnt/out/layout.txt\n'
            "cd /root/composer || exit 1\n"
            f"exec env CI=true COMPOSER_VM_PHASE={phase} .venv/bin/python -m pytest {shlex.join(args)}\n")


# ---- the VM ----------------------------------------------------------------------------------------

def qemu_argv(img: Path, run: Path, wheels: Path) -> list[str]:
    hierarchy = {"v2": "1", "v1": "0"}[CGROUP]
    append = (f"root=/dev/vda rw console=ttyS0 panic=1 systemd.unified_cgroup_hierarchy={hierarchy} "
              "systemd.show_status=0 loglevel=4")
    share = "local,security_model=none,path={},mount_tag={}"
    return ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "4096",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-nic", "none",
            "-serial", f"file:{run}/console.log", "-device", "virtio-rng-pci",
            "-kernel", str(img / "vmlinuz"), "-initrd", str(img / "initrd.img"), "-append", append,
            "-drive", f"file={img}/root.img,format=raw,if=virtio,snapshot=on,cache=unsafe",
            "-virtfs", share.format(run / "in", "in") + ",readonly=on",
            "-virtfs", share.format(wheels, "wheels") + ",readonly=on",
            "-virtfs", share.format(run / "out", "out")]


def boot_and_wait(argv: list[str], run: Path) -> float:
    """Runs the VM to its power-off, streaming guest.log; returns seconds to the guest's first line."""
    log = run / "out" / "guest.log"
    env = dict(os.environ, TMPDIR=str(run))  # snapshot=on's overlay file
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(run / "qemu.log", "w"),
                            stderr=subprocess.STDOUT, env=env)
    t0, booted, pos, step = time.monotonic(), 0.0, 0, "booting"
    try:
        while True:
            done = proc.poll() is not None
            if log.exists():
                with open(log, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
                if chunk:
                    booted = booted or time.monotonic() - t0
                    # only whole lines, so the host's output does not interleave half lines
                    cut = chunk.rfind(b"\n") + 1 if not done else len(chunk)
                    text = chunk[:cut].decode(errors="replace")
                    sys.stdout.write(text)
                    step = ([ln for ln in text.splitlines() if ln.startswith("==> vm: ")] or [step])[-1]
                    sys.stdout.flush()
                    pos += cut
            if done:
                break
            if not booted and time.monotonic() - t0 > BOOT_TIMEOUT:
                raise TierError(f"the VM did not boot to the tier's service within {BOOT_TIMEOUT} s "
                                "(COMPOSER_VM_BOOT_TIMEOUT); killed it.\n" + console_tail(run))
            if time.monotonic() - t0 > TIMEOUT:
                raise TierError(f"the VM did not finish within {TIMEOUT} s (COMPOSER_VM_TIMEOUT), hung or too "
                                f"slow at: {step!r}; killed it.\n" + console_tail(run))
            time.sleep(1)
    finally:
        if proc.poll() is None:
            proc.kill()  # only the qemu this function started
            proc.wait()
    if proc.returncode != 0:
        raise TierError(f"qemu exited with {proc.returncode}: {(run / 'qemu.log').read_text()[-2000:]}")
    if not booted:
        raise TierError("the VM powered off without running the tier's guest script.\n" + console_tail(run))
    return booted


def console_tail(run: Path, n: int = 25) -> str:
    try:
        lines = (run / "console.log").read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return "(no console log)"
    return "last lines of the VM's console:\n  " + "\n  ".join(lines)


# ---- results ---------------------------------------------------------------------------------------

def counts(xml: Path) -> dict[str, int]:
    suite = ET.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    return {"passed": n["tests"] - n["failures"] - n["errors"] - n["skipped"], "failed": n["failures"],
            "errors": n["errors"], "skipped": n["skipped"]}


def report(run: Path, phases: dict[str, list[str]], booted: float, total: float, user_args: bool) -> int:
    out = run / "out"
    guest_log = (out / "guest.log").read_text(errors="replace") if (out / "guest.log").exists() else ""
    print(f"\n==== VM tier, cgroup {CGROUP} ====")
    if (out / "layout.txt").exists():
        print((out / "layout.txt").read_text().rstrip())
    rc_setup = (out / "setup.rc").read_text().strip() if (out / "setup.rc").exists() else "missing"
    if rc_setup != "0":
        raise TierError(f"./dev setup inside the VM failed (status {rc_setup}); see the output above")
    status, total_counts = 0, {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    times = [f"boot {booted:.0f} s", f"setup {(out / 'setup.secs').read_text().strip()} s"]
    for phase in phases:
        rc_file, xml = out / f"{phase}.rc", out / f"{phase}.xml"
        if not rc_file.exists():
            raise TierError(f"the {phase} phase did not finish")
        rc = int(rc_file.read_text())
        times.append(f"{phase} {(out / f'{phase}.secs').read_text().strip()} s")
        if rc == 5 and user_args:
            print(f"{phase}: no test selected")
            continue
        if not xml.exists():
            raise TierError(f"the {phase} phase wrote no results (pytest status {rc})")
        c = counts(xml)
        for k in c:
            total_counts[k] += c[k]
        print(f"{phase}: {c['passed']} passed, {c['failed']} failed, {c['errors']} errors, "
              f"{c['skipped']} skipped (pytest status {rc})")
        if rc and not (c["failed"] or c["errors"]):
            # a failing status with every test passed: the session-end leak check (the lines CI keeps)
            why = [ln for ln in guest_log.splitlines() if "LEAKED HOST OBJECTS" in ln] or ["(no reason in guest.log)"]
            print(f"{phase}: status {rc} with no failed test: " + "; ".join(why))
        status = status or rc
    print(f"times: {', '.join(times)}; whole tier {total:.0f} s")
    # the plain closing line CI reads: errors count as failures there
    print(f"test-v2: {total_counts['passed']} passed, {total_counts['failed'] + total_counts['errors']} failed, "
          f"{total_counts['skipped']} skipped")
    return status


def main(args: list[str]) -> int:
    if CGROUP not in ("v1", "v2"):
        print("test-v2: COMPOSER_VM_CGROUP must be v2 or v1", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally blocks kill the VM
    t0 = time.monotonic()
    phases = plan(args)
    run = Path(tempfile.mkdtemp(prefix="cmpvm-run.", dir="/var/tmp"))
    try:
        for tool in ("qemu-system-x86_64", "debootstrap", "mkfs.ext4", "git"):
            if not shutil.which(tool):
                raise TierError(f"{tool} is not installed (./dev test-v2 installs it: qemu-system-x86, debootstrap, "
                                "e2fsprogs, git)")
        CACHE.mkdir(parents=True, exist_ok=True)
        with open(CACHE / ".lock", "w") as lock:  # two runs at once build the cache once
            fcntl.flock(lock, fcntl.LOCK_EX)
            wheels = ensure_wheels()
            img = ensure_image(wheels)
        (run / "in" / "src").mkdir(parents=True)
        (run / "out").mkdir()
        snapshot_source(run / "in" / "src")
        write_scripts(run / "in", phases)
        say(f"booting Debian 12 (cgroup {CGROUP}, TCG) to run the tests from: {', '.join(phases)}")
        booted = boot_and_wait(qemu_argv(img, run, wheels), run)
        return report(run, phases, booted, time.monotonic() - t0, bool(args))
    except TierError as e:
        print(f"test-v2 (cgroup {CGROUP}): FAILED: {e}", file=sys.stderr)
        print("test-v2: 0 passed, 1 failed")
        return 1
    finally:
        if KEEP:
            say(f"kept {run}")
        else:
            shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
