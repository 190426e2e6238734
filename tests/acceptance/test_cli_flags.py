"""docker compose's spellings as a user meets them (issue 13), on real containers: a dry run that
changes nothing (up) and keeps everything (down), the recreate it predicts and why, down --rmi
local, ps --filter status=, logs --until, up --timestamps, run --cap-add/--cap-drop."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from tests import hostobjects

pytestmark = pytest.mark.root

DRY = "DRY-RUN MODE -  "


def _until(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _tree(root: str) -> set[str]:
    return {os.path.join(d, f) for d, dirs, files in os.walk(root) for f in files + dirs}


def _images(s) -> set[str]:
    lines = s("image", "ls").stdout.splitlines()[1:]
    return {f"{line.split()[0]}:{line.split()[1]}" for line in lines}


def _ps(s, *args: str) -> dict[str, dict]:
    return {r["Service"]: r for r in map(json.loads, s("ps", "--format", "json", *args).stdout.splitlines())}


def _bridge(s, network: str) -> str | None:
    """The host bridge of the project's network (None: no record of it)."""
    from composer.runtime.net.network import NetworkManager

    info = NetworkManager(s.env["COMPOSER_STATE_DIR"]).get(network)
    return info.bridge if info is not None else None


@pytest.fixture
def flags(stack):
    """The `flags` stack; at the end, after its down, the default `bridge` network its build's RUN
    step made goes too (it outlives containers, like docker0)."""
    s = stack("flags")
    yield s
    s("down", "-v", "-t", "0", check=False, timeout=120)
    from composer.runtime.net.network import NetworkManager

    nm = NetworkManager(s.env["COMPOSER_STATE_DIR"])
    if nm.get("bridge") is not None:
        nm.remove("bridge")


def test_dry_run_up_plans_and_creates_nothing(flags):
    s = flags
    state = s.env["COMPOSER_STATE_DIR"]
    before, data = set(os.listdir(state)), _tree(s.env["COMPOSER_DATA_DIR"])
    out = s("--dry-run", "up", "-d").stdout.splitlines()
    n = s.name
    for line in (f"Image {n}-built  Build: no image yet", f"Network {n}_default  Create: not created yet",
                 f"Volume {n}_data  Create: not created yet", f"Container {n}-base-1  Create: not created yet",
                 f"Container {n}-base-1  Start", f"Container {n}-built-1  Create: not created yet",
                 f"Container {n}-done-1  Create: not created yet"):
        assert DRY + line in out, out
    # dependencies first, as up converges them
    assert out.index(DRY + f"Container {n}-base-1  Start") < out.index(DRY + f"Container {n}-built-1  Start")

    # nothing on the host: no container, record, lock, bridge, cgroup, volume or image
    assert s("ps", "-a", "-q").stdout == ""
    assert set(os.listdir(state)) == before
    assert _tree(s.env["COMPOSER_DATA_DIR"]) == data  # no image, layer, volume or container dir
    assert _bridge(s, f"{n}_default") is None
    assert not os.path.exists(os.path.join(state, "networks"))
    assert not [c for c in hostobjects.cgroups() if n in c]
    assert not os.path.exists(os.path.join(s.env["COMPOSER_DATA_DIR"], "volumes", f"{n}_data"))
    assert f"{n}-built:latest" not in _images(s)
    assert s.host_objects()["ids"] == set()


def test_dry_run_down_keeps_everything_then_down_rmi_local(flags):
    s = flags
    n = s.name
    s("up", "-d", timeout=120)
    running = _ps(s)
    assert {"base", "built"} <= set(running)
    assert {f"{n}-built:latest", "busybox:latest"} <= _images(s)

    out = s("--dry-run", "down", "-v", "--rmi", "local").stdout.splitlines()
    for line in (f"Container {n}-built-1  Stop", f"Container {n}-built-1  Remove", f"Container {n}-base-1  Stop",
                 f"Container {n}-done-1  Remove", f"Network {n}_default  Remove", f"Volume {n}_data  Remove",
                 f"Image {n}-built  Remove: --rmi local"):
        assert DRY + line in out, out
    assert out.index(DRY + f"Container {n}-built-1  Stop") < out.index(DRY + f"Container {n}-base-1  Stop")
    assert not any("busybox" in line for line in out)  # not built here: --rmi local keeps it

    # everything is still there, untouched
    after = _ps(s)
    assert {k: v["ID"] for k, v in after.items()} == {k: v["ID"] for k, v in running.items()}
    assert all(after[k]["State"] == "running" for k in ("base", "built"))
    assert _bridge(s, f"{n}_default") in hostobjects.links()
    assert os.path.isdir(os.path.join(s.env["COMPOSER_DATA_DIR"], "volumes", f"{n}_data"))
    assert {f"{n}-built:latest", "busybox:latest"} <= _images(s)

    # the real thing: the built image goes, the pulled one stays
    err = s("--progress", "plain", "down", "--rmi", "local", "-t", "0").stderr
    assert f"Image {n}-built  Removed" in err
    images = _images(s)
    assert f"{n}-built:latest" not in images and "busybox:latest" in images
    assert s("ps", "-a", "-q").stdout == ""


def test_dry_run_names_the_recreate_and_why(flags):
    s = flags
    n = s.name
    s("up", "-d", "base", "done", timeout=60)
    ids = {k: v["ID"] for k, v in _ps(s, "-a").items()}
    assert s("--dry-run", "up", "-d", "base").stdout.splitlines() == [DRY + f"Container {n}-base-1  Running"]

    s.env["MODE"] = "b"  # ${MODE:-a} in the stack file: the environment changes
    out = s("--dry-run", "up", "-d", "base").stdout.splitlines()
    assert out == [DRY + f"Container {n}-base-1  Recreate: configuration changed: environment",
                   DRY + f"Container {n}-base-1  Start"]
    out = s("up", "--dry-run", "-d", "--force-recreate", "base").stdout.splitlines()
    assert DRY + f"Container {n}-base-1  Recreate: forced" in out
    assert {k: v["ID"] for k, v in _ps(s, "-a").items()} == ids  # still the same containers

    # the simple verbs and run: their plans, and nothing done
    assert s("--dry-run", "stop").stdout == DRY + f"Container {n}-base-1  Stop\n"
    assert s("kill", "--dry-run", "-s", "TERM", "base").stdout == DRY + f"Container {n}-base-1  Kill: SIGTERM\n"
    out = s("--dry-run", "rm", "-s", "-f", "base").stdout
    assert out == DRY + f"Container {n}-base-1  Stop\n" + DRY + f"Container {n}-base-1  Remove\n"
    assert s("--dry-run", "pause", "base").stdout == DRY + f"Container {n}-base-1  Pause\n"
    out = s("--dry-run", "run", "--rm", "built", "true").stdout.splitlines()
    assert out == [DRY + f"Container {n}-base-1  Recreate: configuration changed: environment", DRY + f"Container {n}-base-1  Start",
                   DRY + f"Container {n}-built-run-<new id>  Create: one-off",
                   DRY + f"Container {n}-built-run-<new id>  Start"]
    assert {k: v["ID"] for k, v in _ps(s, "-a").items()} == ids
    assert _ps(s)["base"]["State"] == "running"

    # the real up says the same reason
    err = s("--progress", "plain", "up", "-d", "base").stderr
    assert "configuration changed: environment" in err


def test_ps_filter_status_logs_until_and_timestamps(flags):
    s = flags
    n = s.name
    s("up", "-d", "base", "done", timeout=60)
    assert _until(lambda: _ps(s, "-a").get("done", {}).get("State") == "exited")
    assert set(_ps(s, "--filter", "status=exited")) == {"done"}
    assert set(_ps(s, "--status", "exited")) == {"done"}
    assert set(_ps(s, "--filter", "status=running")) == {"base"}
    assert s("ps", "--filter", "name=base", check=False).returncode == 1

    # base says "first", then "second" 2 s later: --until between them shows the first only
    assert _until(lambda: "second" in s("logs", "base").stdout)
    lines = s("logs", "-t", "--no-log-prefix", "base").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["first", "second"]
    first = lines[0].split(" ", 1)[0]
    from composer.ui.logmux import parse_since

    between = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(parse_since(first) + 1.0))
    assert s("logs", "--no-log-prefix", "--until", between, "base").stdout == "first\n"
    assert s("logs", "--no-log-prefix", "--until", "1h", "base").stdout == ""  # all of it is newer

    # attached up --timestamps: every line carries its RFC 3339 time
    out = s("up", "--timestamps", "--no-color", "--no-deps", "done", timeout=60).stdout
    assert re.search(r"^done-1 +\| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z done$", out, re.M), out


def _cap_eff(text: str) -> int:
    return int(re.search(r"^CapEff:\s*([0-9a-f]+)$", text, re.M).group(1), 16)


def test_run_cap_add_and_cap_drop(flags):
    s = flags
    NET_ADMIN, CHOWN = 1 << 12, 1 << 0
    plain = _cap_eff(s("run", "--rm", "-T", "--no-deps", "done", "cat", "/proc/self/status", timeout=60).stdout)
    assert not plain & NET_ADMIN and plain & CHOWN  # docker's default set
    more = _cap_eff(s("run", "--rm", "-T", "--no-deps", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", "done",
                      "cat", "/proc/self/status", timeout=60).stdout)
    assert more & NET_ADMIN and not more & CHOWN
    assert more & ~(NET_ADMIN | CHOWN) == plain & ~(NET_ADMIN | CHOWN)  # nothing else moved


def test_build_args_dependencies_and_print(flags):
    s = flags
    n = s.name
    # --print: the bake file, nothing built
    bake = json.loads(s("build", "--print", "--build-arg", "GREETING=hello", "built").stdout)
    assert bake["group"]["default"]["targets"] == ["built"]
    assert bake["target"]["built"]["args"] == {"GREETING": "hello"}
    assert bake["target"]["built"]["tags"] == [f"{n}-built"]
    assert f"{n}-built:latest" not in _images(s)
    assert s("--dry-run", "build", "--with-dependencies", "built").stdout == DRY + f"Image {n}-built  Build\n"

    s("build", "-q", "--build-arg", "GREETING=hello", "built", timeout=120)
    out = s("run", "--rm", "-T", "--no-deps", "--pull", "never", "built", "cat", "/greeting", timeout=60).stdout
    assert out == "hello\n"
    s("build", "-q", "built", timeout=120)  # the file's default again
    assert s("run", "--rm", "-T", "--no-deps", "built", "cat", "/greeting", timeout=60).stdout == "hi\n"


def test_pull_ignore_pull_failures_and_include_deps(flags):
    s = flags
    failed = s("pull", "remote", check=False)
    assert failed.returncode != 0 and "service 'remote'" in failed.stderr
    ignored = s("pull", "--ignore-pull-failures", "remote")
    assert "service remote: pull failed (ignored)" in ignored.stderr
    # --include-deps: `built` depends on `base`, whose image would be pulled (a dry run: no registry here)
    assert s("--dry-run", "pull", "built").stdout == DRY + "nothing to do\n"
    assert s("--dry-run", "pull", "--include-deps", "built").stdout == DRY + "Image busybox  Pull\n"
