"""The `container` forms of cp, stats, export and attach, and `container inspect -f`, on single
containers (the project forms are in tests/acceptance/test_inspect_transfer.py)."""

from __future__ import annotations

import json
import tarfile

import pytest

from tests.integration.test_runtime_cli import ccli  # noqa: F401 - fixture

pytestmark = pytest.mark.root


def test_container_cp_stats_export_attach(ccli, tmp_path):
    r = ccli("container", "create", "--network", "none", "--name", "box", "-m", "48m", ccli.image,
             "sh", "-c", "cat /config.txt; exit 4")
    assert r.returncode == 0, r.stderr
    # the docker habit: create, copy the configuration in, start
    (tmp_path / "config.txt").write_text("from the host\n")
    assert ccli("container", "cp", str(tmp_path / "config.txt"), "box:/config.txt").returncode == 0
    assert ccli("container", "inspect", "-f", "{{.State.Status}} {{.HostConfig.Memory}}", "box").stdout == \
        "created 50331648\n"
    assert ccli("container", "start", "box").returncode == 0
    assert ccli("container", "wait", "box").stdout.strip() == "4"
    assert ccli("container", "logs", "box").stdout == "from the host\n"
    out = ccli("container", "cp", "box:/config.txt", str(tmp_path / "back.txt"))
    assert out.returncode == 0 and (tmp_path / "back.txt").read_text() == "from the host\n"
    assert ccli("container", "export", "box", "-o", str(tmp_path / "box.tar")).returncode == 0
    with tarfile.open(tmp_path / "box.tar") as t:
        assert t.extractfile("config.txt").read() == b"from the host\n"
    assert ccli("container", "inspect", "-f", "{{.State.ExitCode}} {{.State.Running}}", "box").stdout == "4 false\n"

    r = ccli("container", "run", "-d", "--network", "none", "--name", "live", "-m", "48m", ccli.image,
             "sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait")
    assert r.returncode == 0, r.stderr
    (doc,) = [json.loads(x) for x in ccli("container", "stats", "--no-stream", "--format", "json", "live")
              .stdout.splitlines()]
    assert doc["Name"] == "live" and doc["MemUsage"].endswith(" / 48MiB") and doc["NetIO"] == "0B / 0B"
    table = ccli("container", "stats", "--no-stream", "-a").stdout
    assert "box " in table and "live " in table and "0B / 0B" in table
    assert ccli("container", "attach", "box").returncode != 0  # stopped: nothing to attach to
    refused = ccli("container", "cp", "box:/bin", str(tmp_path / "back.txt"))  # a tree onto a file
    assert refused.returncode == 1 and "cannot copy a directory to a file" in refused.stderr
    assert ccli("container", "stats", "--no-stream", "nosuch").returncode == 1
