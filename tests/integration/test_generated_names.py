"""Containers run without --name, many at once: each gets its own generated name, none fails."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.conftest import PYTHON

pytestmark = pytest.mark.root


def test_parallel_runs_without_name_never_collide(cli, runtime, busybox_image):
    procs = [subprocess.Popen([PYTHON, "-m", "composer", "container", "create", "--network", "none", busybox_image,
                               "true"], env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(20)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    assert [rc for rc, _ in results] == [0] * 20, results
    names = [info.name for info in runtime.list(all=True)]
    assert len(names) == 20 and len(set(names)) == 20, names
