"""A container's records rebuilt when they are damaged (runtime.records): what they held is still on the
host or in the other records, so `ps` shows the truth and `down` tears everything down.

- state.json: the cgroup named after the container (its paths), PID 1 in it (the member whose pid in
  its own namespace is 1) and its start time, the monitor (PID 1's parent, comm `cmp-*`), the endpoints
  in the network records and the ports in ports.json. Written back, so the monitor can record the exit.
- spec.json: the name and labels that create keeps in state.json too (so `down` finds the container by
  its project); without them, the id. The config-hash label is left out, so `up` recreates it."""

from __future__ import annotations

import os
import time

from composer.errors import DamagedRecordError
from composer.runtime import records
from composer.runtime.container import state as st
from composer.runtime.syscalls import proc_start_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from composer.runtime.spec import ContainerSpec

HASH_LABEL = "composer.config-hash"


def state(dir_: str, err: DamagedRecordError) -> dict:
    """state.json of the container whose state dir is dir_ ($STATE/containers/<id>), from the host;
    written back, and said once."""
    s = from_host(dir_)
    try:
        st.write(dir_, s)
    except OSError:
        pass
    records.damaged(err, "rebuilt from the host (cgroup, processes, network records)")
    return s


def from_host(dir_: str) -> dict:
    """What state.json would say, from the host alone (also for a removal whose state dir was lost)."""
    id = os.path.basename(dir_)
    state_root = os.path.dirname(os.path.dirname(dir_))
    s: dict = {"rebuilt": True}
    paths = _cgroup(id)
    if paths is not None:
        s["cgroup"] = paths.to_dict()
        pid1 = _pid1(paths)
        if pid1:
            start = proc_start_time(pid1)
            s.update(pid=pid1, pid_start=start, started_at=_started(pid1), finished_at=None, exit_code=None,
                     paused=False, stop_requested=False, restarting=False)
            mon = _parent(pid1)
            if mon and _comm(mon).startswith("cmp-"):
                s.update(monitor_pid=mon, monitor_start=proc_start_time(mon))
    if not s.get("pid"):
        s["finished_at"] = time.time()  # exit code unknown: "Exited (?)"
    endpoints = _endpoints(state_root, id)
    if endpoints:
        s["endpoints"] = endpoints
        s["ports"] = _ports(state_root, id)
    return s


def spec(id: str, state_dir: str, err: DamagedRecordError | None) -> "ContainerSpec":
    """A stand-in spec: enough to list, stop and remove the container, not to start it."""
    from composer.runtime.spec import ContainerSpec

    s, source = st.read(state_dir), os.path.join(state_dir, st.STATE_FILE)
    if not s.get("name"):
        s, source = _cgroup_label(id), "its cgroup's label"
    labels = tuple((str(k), str(v)) for k, v in s.get("labels") or () if k != HASH_LABEL)
    if err is not None:
        records.damaged(err, f"name and labels taken from {source}" if s.get("name") else "known by its id only")
    return ContainerSpec(id=id, name=str(s.get("name") or id[:12]), image="(damaged spec)", image_id="",
                         layers=(), argv=(), labels=labels, network_mode="none")


def _cgroup_label(id: str) -> dict:
    """What lifecycle.label_cgroup wrote on the container's cgroup."""
    from composer.runtime.container.lifecycle import CGROUP_LABEL as LABEL_XATTR

    paths = _cgroup(id)
    for _, d in paths.dirs if paths else ():
        try:
            value = records.loads(os.getxattr(d, LABEL_XATTR).decode())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(value, dict):
            return value
    return {}


def _cgroup(id: str):
    from composer.runtime.cgroups import base as cgroups

    drv = cgroups.default_driver()
    if drv.version == 1:
        dirs = tuple((c, os.path.join(own, cgroups.COMPOSER_DIR, id)) for c, own in getattr(drv, "_h", ()))
    else:
        from composer.runtime.spec import Resources

        try:
            dirs = drv.plan(id, Resources()).dirs
        except Exception:  # noqa: BLE001 - a host that refuses a plan has no cgroup of ours either
            return None
    dirs = tuple((c, d) for c, d in dirs if os.path.isdir(d))
    return cgroups.CgroupPaths(drv.version, dirs) if dirs else None


def _pid1(paths) -> int | None:
    from composer.runtime.cgroups import base as cgroups

    for _, d in paths.dirs:
        for pid in cgroups.read_pids(d):
            if _nspid(pid) == 1:
                return pid
    return None


def _nspid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return None


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
        return int(raw[raw.rfind(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _started(pid: int) -> float:
    try:
        return os.stat(f"/proc/{pid}").st_mtime
    except OSError:
        return time.time()


def _endpoints(state_root: str, id: str) -> list[dict]:
    out = []
    net_dir = os.path.join(state_root, "networks")
    try:
        names = sorted(os.listdir(net_dir))
    except OSError:
        return []
    for name in names:
        if not name.endswith(".json") or name.startswith(".") or name in ("ports.json", "proxies.json"):
            continue
        try:
            data = records.read_dict(os.path.join(net_dir, name))
        except (OSError, DamagedRecordError):
            continue
        ep = (data.get("endpoints") or {}).get(id)
        if isinstance(ep, dict):
            out.append(ep)
    return out


def _ports(state_root: str, id: str) -> list[dict]:
    try:
        data = records.read(os.path.join(state_root, "networks", "ports.json"), list)
    except (OSError, DamagedRecordError):
        return []
    return [{k: p[k] for k in ("container_port", "host_port", "host_ip", "protocol") if k in p}
            for p in data if isinstance(p, dict) and p.get("container_id") == id]
