"""`composer system doctor` and `composer system prune`: what composer left behind on this host, in this
state dir and in others, and removing what is provably this state dir's and unused.

Ownership is proved, never guessed: a staging dir or a container dir in our data dir, a state dir in our
state dir (unless its state.json names another data dir), a bridge whose ifalias names our scope
(project.recovery.BridgeTag), nft chains named with our scope tag, a mount under our own dirs. Each is an orphan only when no record uses it and nothing runs from
it. What another state dir made (known through its monitors' command lines: `cmp-mon-*` processes carry
their state dir) or what carries no owner (a cgroup named after an id no state dir of ours knows, an
untagged link, a named netns) is reported and left alone."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from composer.errors import ComposerError
from composer.project import recovery
from composer.runtime import Runtime

ID = re.compile(r"^[0-9a-f]{64}$")
_MONITOR_ARG = re.compile(r"^(/.+)/containers/([0-9a-f]{64})$")


@dataclass(frozen=True)
class Leftover:
    """One host object or file composer made that nothing uses (or that this state dir cannot vouch for)."""

    kind: str  # staging dir | container dir | state dir | cgroup | bridge | veth | netns | mount | nft chains
    what: str  # a path or a name
    why: str
    ours: bool  # provably this state dir's and unused: `system prune` removes it
    key: str = ""  # what prune needs: a container id, a project name


def other_state_dirs(runtime: Runtime) -> dict[str, set[str]]:
    """State dir -> ids (or, for a Python monitor, the 7-hex prefix its comm carries) of the containers
    its live monitors supervise, ours included. cmp-pump's arguments name `<state>/containers/<id>`; a
    Python monitor has its launcher's command line (`... launcher_server ... ROOT STATE`)."""
    out: dict[str, set[str]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            if not comm.startswith("cmp-mon-"):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        found = [m for m in map(_MONITOR_ARG.match, argv) if m]
        if found:
            out.setdefault(os.path.realpath(found[0].group(1)), set()).add(found[0].group(2))
            continue
        code = next((i for i, a in enumerate(argv) if "launcher_server" in a), None)
        if code is not None and len(argv) > code + 2 and argv[code + 2].startswith("/"):
            out.setdefault(os.path.realpath(argv[code + 2]), set()).add(comm[len("cmp-mon-"):])
    return out


def _owner(others: dict[str, set[str]], id: str) -> str | None:
    for d, ids in others.items():
        if id in ids or id[:7] in ids:
            return d
    return None


def find(runtime: Runtime) -> list[Leftover]:
    from composer.runtime.cgroups import base as cgroups
    from composer.runtime.container import inventory
    from composer.runtime.container import state as st

    out: list[Leftover] = []
    base = os.path.join(runtime.data_dir, "containers")
    for path in inventory.leftovers(base):
        out.append(Leftover("staging dir", path, "a create or remove killed midway", True))
    for id in inventory.specless(runtime):
        busy = inventory.busy(runtime, id)
        out.append(Leftover("container dir", runtime.paths(id).data,
                            f"no spec.json; {busy} still runs from it" if busy else "no spec.json, nothing runs from it",
                            busy is None, id))
    data_ids = set(runtime._ids())
    state_root = os.path.join(runtime.state_dir, "containers")
    state_ids = {n for n in _listdir(state_root) if ID.match(n)}
    for id in sorted(state_ids - data_ids):
        s = st.read(runtime.paths(id).state)
        live = _state_alive(s) or inventory.busy(runtime, id) is not None
        elsewhere = s.get("data_dir") and os.path.realpath(s["data_dir"]) != os.path.realpath(runtime.data_dir)
        why = ("no container dir; its processes still run" if live else
               f"its container is in data dir {s['data_dir']}" if elsewhere else "no container dir, nothing runs")
        out.append(Leftover("state dir", runtime.paths(id).state, why, not live and not elsewhere, id))
    mine = os.path.realpath(runtime.state_dir)
    others = other_state_dirs(runtime)
    for d in cgroups.find_leftovers(""):
        id = os.path.basename(d)
        if id.startswith("composer-") and id.endswith(".scope"):  # systemd: composer.slice/composer-<id>.scope
            id = id[len("composer-"):-len(".scope")]
        if not ID.match(id) or id in data_ids or id in state_ids:
            continue
        where = _owner(others, id)
        if where and where != mine:
            continue  # a live container of another state dir: not a leftover
        pids = [p for sub in (d, *cgroups._subdirs(d)) for p in cgroups.read_pids(sub)]
        out.append(Leftover("cgroup", d, f"no container {id[:12]} in this state dir"
                            + (f"; processes {pids[:5]} in it" if pids else "; empty")
                            + " (another state dir's, or left by a crash)", False, id))
    out += _links(runtime, others)
    out += _mounts(runtime)
    out += _chains(runtime, others)
    return out


def _state_alive(s: dict) -> bool:
    from composer.runtime.syscalls import is_alive

    return is_alive(s.get("pid"), s.get("pid_start")) or is_alive(s.get("monitor_pid"), s.get("monitor_start"))


def _scopes(runtime: Runtime, others: dict[str, set[str]]) -> dict[str, str]:
    from composer.runtime.net import nft

    dirs = {os.path.realpath(runtime.state_dir), *others}
    return {nft.scope_tag(d): d for d in dirs}


def _links(runtime: Runtime, others: dict[str, set[str]]) -> list[Leftover]:
    out = []
    scope = recovery.scope_of(runtime)
    scopes = _scopes(runtime, others)
    nm = runtime.network
    for link, tag in sorted(recovery.tagged_bridges().items()):
        if tag.scope == scope:
            if nm.get(tag.network) is None:
                out.append(Leftover("bridge", link, f"network {tag.network} of project {tag.project}: no record", True,
                                    tag.project))
        elif tag.scope in scopes:
            if not os.path.exists(os.path.join(scopes[tag.scope], "networks", f"{tag.network}.json")):
                out.append(Leftover("bridge", link, f"network {tag.network} of state dir {scopes[tag.scope]}: "
                                    "no record there", False))
        elif not os.path.isdir(os.path.join(recovery.SYS_NET, link, "brif")) or not recovery.enslaved(link):
            out.append(Leftover("bridge", link, f"network {tag.network} of project {tag.project}, state dir "
                                f"scope {tag.scope} (no live container of it here)", False))
    for link in recovery._links():
        if link.startswith("cmpv") and not os.path.exists(os.path.join(recovery.SYS_NET, link, "master")):
            out.append(Leftover("veth", link, "on no bridge", False))
    for ns in _listdir("/run/netns"):
        if ns.startswith("cmp"):
            out.append(Leftover("netns", f"/run/netns/{ns}", "composer's runtime names no netns: made by a tool "
                                "or test", False))
    return out


def _mounts(runtime: Runtime) -> list[Leftover]:
    roots = [os.path.realpath(runtime.data_dir) + "/containers/", os.path.realpath(runtime.state_dir) + "/"]
    running = {c.id for c in runtime.list() if c.running}
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
    except OSError:
        return []
    for point in points:
        if any(point.startswith(r) for r in roots) and not any(i in point for i in running):
            out.append(Leftover("mount", point, "under this state dir, of no running container", True))
    return out


def _chains(runtime: Runtime, others: dict[str, set[str]]) -> list[Leftover]:
    from composer.runtime.net import nft

    text = nft.table_text()
    tags = sorted({line.split()[1].rsplit("_", 1)[1] for line in text.splitlines()
                   if line.strip().startswith("chain ") and "_" in line.split()[1]})
    scope = recovery.scope_of(runtime)
    scopes = _scopes(runtime, others)
    out = []
    for tag in tags:
        if tag == scope:
            if not runtime.network.list() and not runtime.network.ports.records():
                out.append(Leftover("nft chains", f"ip composer *_{tag}", "this state dir has no network or port", True))
        elif tag in scopes:
            if not [n for n in _listdir(os.path.join(scopes[tag], "networks")) if n.endswith(".json")]:
                out.append(Leftover("nft chains", f"ip composer *_{tag}", f"state dir {scopes[tag]} has no "
                                    "network record", False))
        else:
            out.append(Leftover("nft chains", f"ip composer *_{tag}", "of a state dir with no live container here",
                                False))
    return out


def prune(runtime: Runtime) -> tuple[list[Leftover], list[tuple[Leftover, str]]]:
    """Remove what find() proves ours. Returns (removed, [(left, why not)])."""
    from composer.runtime import syscalls
    from composer.runtime.cgroups import base as cgroups
    from composer.runtime.container import inventory
    from composer.runtime.container.teardown import rmtree
    from composer.runtime.net import nft

    removed, failed = [], []
    found = [x for x in find(runtime) if x.ours]
    for x in sorted(found, key=lambda x: x.kind != "mount"):  # mounts first: the dirs under them go next
        try:
            if x.kind == "mount":
                syscalls.umount2(x.what, 2)  # MNT_DETACH
            elif x.kind == "staging dir":
                if x.what not in inventory.sweep(runtime):
                    raise ComposerError("a create holds the lock, or it could not be deleted")
            elif x.kind == "container dir":
                inventory.reclaim(runtime, x.key)
            elif x.kind == "state dir":
                driver = cgroups.default_driver()
                for d in driver.find_leftovers(x.key):
                    driver.remove_dir(d)  # a systemd scope: through systemd
                rmtree(x.what)
            elif x.kind == "bridge":
                recovery.reclaim_networks(runtime, x.key)
            elif x.kind == "nft chains":
                nft.apply(nft.ruleset(recovery.scope_of(runtime), [], []))
                nft.drop_table_if_empty()
            removed.append(x)
        except (ComposerError, OSError) as e:
            failed.append((x, str(e)))
    return removed, failed


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
