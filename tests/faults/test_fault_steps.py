"""kill -9 at every named step (composer/faults.py) of create, start, up and down, then `down`: nothing
of the project may remain on the host or in the state and data dirs, and the named volume keeps its
data (`down -v` at the end removes it). One stack, one shared image; ~2 s a step."""

from __future__ import annotations

import os
import signal

import pytest

from composer import faults
from tests.faults.common import (STACK, Owned, data_dir, left_on_host, look, orphan_files, run_with_fault, stopped,
                                 volume_file, wait_for)

pytestmark = pytest.mark.root

UP_STEPS = [s for s in faults.STEPS if s.split(".")[0] in ("create", "start", "up")]
DOWN_STEPS = [s for s in faults.STEPS if s.startswith("down.")]


def test_every_step_is_covered():
    assert set(UP_STEPS) | set(DOWN_STEPS) | {"monitor.finish"} == set(faults.STEPS)


def _check_clean(s, owned: Owned) -> None:
    assert left_on_host(owned) == {}
    assert orphan_files(s, owned.ids) == []


@pytest.mark.parametrize("step", UP_STEPS)
def test_kill_up_at_step_then_down(tstack, step):
    s = tstack(STACK)
    s("up", "-d")
    s("down", "-t", "0")
    assert volume_file(s) == "run\n"
    owned = Owned(s)
    proc = run_with_fault(s, step, "up", "-d")
    assert proc.returncode == -signal.SIGKILL, f"up did not reach {step}: {proc.returncode} {proc.stderr.read()}"
    look(owned)
    s("down", "-t", "0")
    _check_clean(s, owned)
    assert volume_file(s) in ("run\n", "run\nrun\n")  # the killed up may have started db
    s("down", "-v", "-t", "0")
    assert not os.path.exists(os.path.join(s.env["COMPOSER_DATA_DIR"], "volumes", f"{s.name}_data"))


@pytest.mark.parametrize("volumes", [False, True], ids=["keep-volumes", "-v"])
@pytest.mark.parametrize("step", DOWN_STEPS)
def test_kill_down_at_step_then_down(tstack, step, volumes):
    s = tstack(STACK)
    s("up", "-d")
    owned = Owned(s)
    look(owned)
    v = ("-v",) if volumes else ()
    proc = run_with_fault(s, step, "down", *v, "-t", "0")
    assert proc.returncode == -signal.SIGKILL, f"down did not reach {step}: {proc.returncode}"
    s("down", *v, "-t", "0")
    _check_clean(s, owned)
    volume = os.path.join(s.env["COMPOSER_DATA_DIR"], "volumes", f"{s.name}_data")
    assert not os.path.exists(volume) if volumes else volume_file(s) == "run\n"


def test_up_frozen_at_dir_creation_then_killed(tstack):
    """The issue's reproduction: `up -d` frozen once it made the container's dir, then kill -9. No dir
    without a spec is ever in place; `container ls -a` shows nothing half-made; `down -v` leaves nothing."""
    s = tstack(STACK)
    owned = Owned(s)
    proc = run_with_fault(s, "create.dir", "up", "-d", action="stop", wait=False)
    try:
        wait_for(lambda: stopped(proc) or proc.poll() is not None)
        assert proc.poll() is None
        staged = [n for n in os.listdir(data_dir(s)) if n.startswith(".new-")]
        assert staged and all(not os.path.exists(os.path.join(data_dir(s), n, "spec.json")) for n in staged)
        assert not [n for n in os.listdir(data_dir(s)) if len(n) == 64
                    and not os.path.exists(os.path.join(data_dir(s), n, "spec.json"))]
        look(owned)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert s.name not in s("container", "ls", "-a").stdout
    s("down", "-v", "-t", "0")
    _check_clean(s, owned)


def test_specless_dir_from_an_older_version_is_reclaimed(tstack):
    """`<id>/` with upper, work, rootfs and a 0-byte spec.json.tmp (what older versions left): listed
    as dead, removed by `container rm -f ID`, and by `down` when nothing runs from it."""
    s = tstack(STACK)
    for n, cmd in enumerate((("container", "rm", "-f"), ("down",))):
        cid = f"{n}" * 64
        d = os.path.join(data_dir(s), cid)
        for sub in ("upper", "work", "rootfs"):
            os.makedirs(os.path.join(d, sub))
        open(os.path.join(d, "spec.json.tmp"), "w").close()
        assert cid[:12] in s("container", "ls", "-a").stdout
        s(*cmd, *((cid,) if cmd[0] == "container" else ("-t", "0")))
        assert not os.path.exists(d)


def test_specless_dir_with_a_live_process_waits_for_rm_f(tstack):
    """Something still runs in a cgroup named after a spec-less dir: `down` leaves it alone, `system
    doctor` reports it (not for prune), `container rm -f ID` kills it and removes all."""
    import json
    import subprocess

    from composer.runtime.cgroups import base as cgroups

    s = tstack(STACK)
    cid = "e" * 64
    d = os.path.join(data_dir(s), cid)
    os.makedirs(os.path.join(d, "upper"))
    cg = os.path.join(cgroups.default_driver().base_dirs()[0], cid)
    os.makedirs(cg)
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(sleeper.pid))
        s("down", "-t", "0")
        assert os.path.isdir(d) and sleeper.poll() is None
        left = json.loads(s("system", "doctor", "--format", "json").stdout)["leftovers"]
        assert [x["ours"] for x in left if x["what"] == d] == [False]
        s("container", "rm", "-f", cid[:12])
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
        assert not os.path.exists(d) and not os.path.exists(cg)
    finally:
        sleeper.kill()
        sleeper.wait()
        if os.path.isdir(cg):
            os.rmdir(cg)
