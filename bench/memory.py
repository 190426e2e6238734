"""Memory of composer's own processes with N idle containers (goal: 30 => <= 12 MB PSS together).

    sudo .venv/bin/python bench/memory.py [N] [--separate]

Default: one process starts all N (as `composer up` does). --separate: N separate
`composer container run -d` CLIs. Either way every monitor is forked by the state dir's one lean
launcher. Sums Pss from /proc/PID/smaps_rollup over every composer process of this bench's state
dir (comm `cmp-*`: the launcher, while it idles, and the monitors), then waits for the launcher to
leave (--idle SECS, default 5) and sums again. Containers run `sleep` in a busybox rootfs; all are
removed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def busybox_rootfs(base: str) -> str:
    root = os.path.join(base, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", os.path.join(root, "bin", "busybox"))
    for name in ("sh", "sleep", "true"):
        os.symlink("busybox", os.path.join(root, "bin", name))
    os.makedirs(os.path.join(root, "etc"))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    return root


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def composer_processes(state_dir: str) -> dict[int, str]:
    """pid -> comm of the cmp-* processes started for state_dir (it is on the launcher's command
    line, which its monitors inherit; a monitor that became cmp-pump names its container's state dir)."""
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
                if not comm.startswith("cmp-"):
                    continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
                if any(a == state_dir.encode() or a.startswith(state_dir.encode() + b"/") for a in args):
                    out[int(pid)] = comm  # cmp-pump carries the container's state dir, below it
            except OSError:
                pass
    return out


def report(state_dir: str, label: str) -> float:
    procs = composer_processes(state_dir)
    pss = {pid: pss_kb(pid) for pid in procs}
    mons = [p for p, c in procs.items() if c.startswith("cmp-mon-")]
    launchers = [p for p, c in procs.items() if c == "cmp-launcher"]
    total = sum(pss.values())
    mon_total = sum(pss[p] for p in mons)
    print(f"{label}: {total / 1024:.1f} MB PSS total = {len(launchers)} launcher(s) "
          f"{sum(pss[p] for p in launchers) / 1024:.1f} MB + {len(mons)} monitors {mon_total / 1024:.1f} MB "
          f"({mon_total / max(1, len(mons)):.0f} kB each)")
    return total / 1024


def main() -> None:
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "30"))
    separate = "--separate" in sys.argv
    idle = float(sys.argv[sys.argv.index("--idle") + 1]) if "--idle" in sys.argv else 5.0
    base = tempfile.mkdtemp(prefix="composer-bench-", dir="/var/tmp")
    os.environ["COMPOSER_STATE_DIR"] = os.path.join(base, "state")
    os.environ["COMPOSER_DATA_DIR"] = os.path.join(base, "data")
    os.environ["COMPOSER_LAUNCHER_IDLE"] = str(idle)
    state_dir = os.environ["COMPOSER_STATE_DIR"]
    from composer.runtime import Runtime
    from composer.runtime.spec import ContainerSpec

    rt = Runtime()
    layer = busybox_rootfs(base)
    try:
        if separate:
            import tarfile

            with tarfile.open(os.path.join(base, "bb.tar"), "w") as t:
                t.add(layer, arcname=".")
            py = os.path.join(ROOT, ".venv", "bin", "python")
            subprocess.run([py, "-m", "composer", "image", "import", os.path.join(base, "bb.tar"), "bench-bb"],
                           check=True, capture_output=True)
            for i in range(n):
                subprocess.run([py, "-m", "composer", "container", "run", "-d", "--network", "none",
                                "--name", f"mem{i}", "bench-bb", "sleep", "3600"], check=True, capture_output=True)
        else:
            rt.prepare()
            for i in range(n):
                spec = ContainerSpec(id=os.urandom(32).hex(), name=f"mem{i}", image="bb", image_id="bb",
                                     layers=(layer,), argv=("sleep", "3600"), network_mode="none")
                rt.run(spec)
        time.sleep(0.5)
        mode = "separate CLIs" if separate else "one starter"
        report(state_dir, f"{n} idle containers ({mode})")
        time.sleep(idle + 1.5)  # the launcher stays while it has monitors: this shows it does
        report(state_dir, f"{n} idle containers ({mode}), {idle:g} s later")
    finally:
        for info in rt.list(all=True):
            rt.remove(info.id, force=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
