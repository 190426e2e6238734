"""Memory of composer's own processes with idle containers started by separate CLIs, and the
launcher's life: one per state dir, shared by every CLI, gone after its idle timeout."""

from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.root

IDLE = 1.0


def _ours(state_dir: str) -> dict[int, str]:
    """pid -> comm of the cmp-* processes of this state dir (on the launcher's command line,
    inherited by the template and the monitors)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if comm.startswith("cmp-"):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
                if any(a == state_dir.encode() or a.startswith(state_dir.encode() + b"/") for a in args):
                    out[int(pid)] = comm  # cmp-pump names its container's state dir
        except OSError:
            continue
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def _wait_gone(state_dir: str, timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = _ours(state_dir)
        if not left:
            return left
        time.sleep(0.1)
    return _ours(state_dir)


def test_ten_idle_containers_from_separate_clis(cli, runtime, busybox_image):
    state = cli.env["COMPOSER_STATE_DIR"]
    cli.env["COMPOSER_LAUNCHER_IDLE"] = str(IDLE)
    ids = []
    for i in range(10):
        r = cli("container", "run", "-d", "--network", "none", "--name", f"mem{i}", busybox_image, "sleep", "300")
        assert r.returncode == 0, r.stderr
        ids.append(r.stdout.strip())
    launchers = [p for p, c in _ours(state).items() if c == "cmp-launcher"]
    assert len(launchers) == 1  # one launcher for all ten CLIs
    deadline = time.monotonic() + 8  # the launcher leaves once idle (the fixture's has the default 5 s)
    while time.monotonic() < deadline and "cmp-launcher" in _ours(state).values():
        time.sleep(0.2)
    time.sleep(0.3)
    procs = _ours(state)
    comms = sorted(procs.values())
    assert "cmp-launcher" not in comms and "cmp-zygote" not in comms, comms
    assert sum(c.startswith("cmp-mon-") for c in comms) == 10, comms
    from composer.runtime.monitor import handoff

    assert handoff.PUMP is not None, "cmp-pump is not built: ./dev setup compiles it"
    assert all(os.readlink(f"/proc/{p}/exe") == os.path.realpath(handoff.PUMP) for p in procs), procs
    total_mb = sum(_pss_kb(p) for p in procs) / 1024
    # Python monitors: ~1 MB each (and 100 MB before the lean launcher); idle cmp-pumps: ~0.15 MB.
    assert total_mb < 4, f"{total_mb:.1f} MB PSS for 10 idle containers: {procs}"
    for cid in ids:
        r = cli("container", "rm", "-f", cid)
        assert r.returncode == 0, r.stderr
    left = _wait_gone(state, IDLE + 5)
    assert not left, f"still running {IDLE} s after the last container went: {left}"


def test_a_kept_launcher_connection_serves_the_next_start_or_is_replaced(runtime, make_spec):
    """`container run` keeps prepare()'s connection for its spawn; a launcher gone meanwhile (here
    terminated, by its verified pid) costs only a fresh connection, not the start."""
    import signal

    from composer.runtime.monitor import launcher

    client = launcher.for_state_dir(runtime.state_dir)
    runtime.prepare(spawning=True)
    kept = client._kept.get("sock")
    assert kept is not None  # the fixture's prepare() started the launcher: this one found it running
    spec = make_spec("true")
    runtime.create(spec)
    runtime.start(spec.id)
    assert "sock" not in client._kept and kept.fileno() == -1  # used by that spawn, then closed
    assert runtime.wait(spec.id).exit_code == 0

    runtime.prepare(spawning=True)
    old = client.pid
    assert _ours(runtime.state_dir).get(old) == "cmp-launcher"
    os.kill(old, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and old in _ours(runtime.state_dir):
        time.sleep(0.02)
    spec2 = make_spec("true")
    runtime.create(spec2)
    runtime.start(spec2.id)
    assert client.pid != old
    assert runtime.wait(spec2.id).exit_code == 0


def test_prepare_without_a_spawn_keeps_no_connection(runtime):
    from composer.runtime.monitor import launcher

    runtime.prepare()
    assert "sock" not in launcher.for_state_dir(runtime.state_dir)._kept
