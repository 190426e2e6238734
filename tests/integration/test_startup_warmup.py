"""The CLI's cgroup warm-up (composer/startup.py) ends once the first container has moved into its
cgroup: while that container runs, the CLI has no warm-up thread left taking the host-wide
cgroup_mutex every 10 ms (it used to go on until the command ended, up to 10 s)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.integration.conftest import PYTHON

pytestmark = pytest.mark.root


def test_no_warm_up_thread_once_the_container_has_moved(cli, runtime, busybox_image):
    env = dict(cli.env)
    env.pop("COMPOSER_NO_WARMUP", None)
    # `python -m composer`: the process's own command line, so the warm-up starts on main's first lines
    proc = subprocess.Popen([PYTHON, "-m", "composer", "container", "run", "--rm", "--network", "none",
                             "--name", "sleeper", busybox_image, "sleep", "3"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listed = cli("container", "inspect", "sleeper")
            if listed.returncode == 0 and json.loads(listed.stdout)[0]["State"]["Status"] == "running":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the container did not start")
        time.sleep(0.1)
        assert proc.poll() is None  # still attached to the running container
        assert os.listdir(f"/proc/{proc.pid}/task") == [str(proc.pid)]  # the main thread alone
    finally:
        proc.kill()
        proc.communicate()
