"""Memory of composer's own processes with N idle containers (goal: 30 => <= 12 MB PSS together).

    sudo .venv/bin/python bench/memory.py [N] [--separate]

Default: one process starts all N (as `composer up` does: one launcher, monitors share its pages).
--separate: N separate `composer container run -d` CLIs (each monitor from its own launcher).
Sums Pss from /proc/PID/smaps_rollup over every `cmp-mon-*` process (the monitors; the launcher
is gone once the starting CLI exits). Containers run `sleep` in a busybox rootfs; all are removed."""

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


def monitors() -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().startswith("cmp-mon-"):
                        out.append(int(pid))
            except OSError:
                pass
    return out


def main() -> None:
    n = int(next((a for a in sys.argv[1:] if a.isdigit()), "30"))
    separate = "--separate" in sys.argv
    base = tempfile.mkdtemp(prefix="composer-bench-", dir="/var/tmp")
    os.environ["COMPOSER_STATE_DIR"] = os.path.join(base, "state")
    os.environ["COMPOSER_DATA_DIR"] = os.path.join(base, "data")
    before = set(monitors())
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
            from composer.runtime import launcher

            launcher.shared().close()  # as when the CLI exits
        time.sleep(1.0)
        pids = sorted(set(monitors()) - before)
        total = sum(pss_kb(p) for p in pids)
        mode = "separate CLIs" if separate else "one starter"
        print(f"{len(pids)} monitors ({mode}): {total / 1024:.1f} MB PSS total, "
              f"{total / max(1, len(pids)):.0f} kB each")
    finally:
        for info in rt.list(all=True):
            rt.remove(info.id, force=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
