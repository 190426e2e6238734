"""The Runtime: create, start, stop, kill, remove, pause, inspect and list containers, from any
process, through the files on disk (no daemon).

    $STATE/containers/<id>/  state.json, lock, hosts, hostname, resolv.conf   (tmpfs: gone at reboot)
    $DATA/containers/<id>/   spec.json, upper/, work/, rootfs/, container.log  (persistent)

The container inventory is $DATA (so containers survive a reboot as "exited"); run-time facts are
in $STATE. Processes come from the state dir's launcher (runtime.monitor.launcher), never from this,
possibly threaded, process. Starting is a handshake with the new monitor: it reports PID 1's pid, we put
PID 1 into its cgroup and attach its network, then say "go" and learn whether exec worked.

This module holds what a container is on disk (ContainerInfo, derived from spec.json and state.json)
and the Runtime facade; the verbs that change containers are in runtime.container.lifecycle, reading their
logs in runtime.container.logread."""

from __future__ import annotations

import os
import re
import select
import signal
import time
from dataclasses import dataclass, field, replace

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)

from composer.errors import ConflictError, DamagedRecordError, NotFoundError
from composer.runtime import records
from composer.runtime.container import state as st
from composer.runtime.spec import ContainerSpec, PortMapping
from composer.runtime.syscalls import is_alive

if TYPE_CHECKING:
    from typing import Any, Iterator
    from pathlib import Path

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
NAME_MAX = 253  # a DNS name: peers find a container under its name
ID_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ContainerInfo:
    """A container as found on disk: its spec and the facts of its state."""

    id: str
    name: str
    spec: ContainerSpec
    status: str  # created | running | paused | restarting | exited | dead
    pid: int | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    error: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    restart_count: int = 0
    endpoints: tuple[Any, ...] = ()  # runtime.net.records.Endpoint
    ports: tuple[PortMapping, ...] = ()  # as published (host ports resolved)
    health: str | None = None  # starting | healthy | unhealthy, while it runs with a healthcheck
    monitor_pid: int | None = None
    # "monitor died: X (traceback in LOG)" when its monitor died of an exception (runtime.monitor.failure)
    monitor_error: str | None = None
    # False: it runs, but its monitor died (kill -9, OOM): no restarts, healthchecks or log rotation
    supervised: bool = True
    # docker's State.Health.Log: the last probes (dicts: kept out of hash and equality)
    health_log: tuple[dict, ...] = field(default=(), hash=False, compare=False)


    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")

    def label(self, key: str, default: str | None = None) -> str | None:
        return self.spec.label(key, default)


@dataclass(frozen=True)
class LogRecord:
    """One line of a container's output."""

    time: str  # RFC 3339 with nanoseconds, as docker's json-file
    stream: str  # stdout | stderr
    line: str  # with its trailing newline (if it had one)


@dataclass
class _Paths:
    """A container's state dir (run-time facts) and data dir (spec, upper dir, log)."""

    state: str
    data: str

    @property
    def spec(self) -> str:
        return os.path.join(self.data, "spec.json")

    @property
    def log(self) -> str:
        return os.path.join(self.data, "container.log")


def default_state_dir() -> str:
    """$COMPOSER_STATE_DIR, else /run/composer: a tmpfs, gone with a reboot as the containers are."""
    return os.environ.get("COMPOSER_STATE_DIR") or "/run/composer"


class Runtime:
    def __init__(self, state_dir: Path | str | None = None, data_dir: Path | str | None = None) -> None:
        self.state_dir = str(state_dir or default_state_dir())
        self.data_dir = str(data_dir or os.environ.get("COMPOSER_DATA_DIR") or "/var/lib/composer")
        self._network = None
        # False: an attached --rm run's removal (wait) returns before its host veths are gone
        # (Runtime.remove); the CLI sets it, as it exits right after
        self.settle_links = True

    # ------------------------------------------------------------ plumbing

    def prepare(self, *, spawning: bool = False) -> None:
        """Have the state dir's launcher start now, in the background, if none runs (it is exec'd,
        so any thread may call this; calling it early hides the launcher's start-up). spawning: a
        container start follows at once (see Launcher.start's keep)."""
        from composer.runtime.monitor import launcher

        try:
            launcher.for_state_dir(self.state_dir).start(keep=spawning)
        except OSError:
            pass  # the start itself reports it

    def paths(self, id: str) -> _Paths:
        return _Paths(os.path.join(self.state_dir, "containers", id), os.path.join(self.data_dir, "containers", id))

    @property
    def network(self):
        if self._network is None:
            from composer.runtime.net.network import NetworkManager  # netlink only when networks are used

            self._network = NetworkManager(self.state_dir)
        return self._network

    def _specs(self) -> list[ContainerSpec]:
        return [spec for spec in map(self._spec, self._ids()) if spec is not None]

    def _ids(self) -> list[str]:
        try:
            return [n for n in os.listdir(os.path.join(self.data_dir, "containers")) if ID_RE.match(n)]
        except FileNotFoundError:
            return []

    def _spec(self, id: str) -> ContainerSpec | None:
        """None when the dir has no spec (runtime.container.inventory reclaims it); a damaged spec is
        said once and stood in for (runtime.container.rebuild), so the container stays visible."""
        path = self.paths(id).spec
        try:
            data = records.read_dict(path)
        except FileNotFoundError:
            return None
        except DamagedRecordError as err:
            return self._stand_in(id, err)
        try:
            return ContainerSpec.from_dict(data)
        except (KeyError, TypeError, ValueError) as e:
            return self._stand_in(id, DamagedRecordError(path, f"not a container spec: {e!r}"))

    def _stand_in(self, id: str, err: DamagedRecordError | None) -> ContainerSpec:
        from composer.runtime.container import rebuild

        return rebuild.spec(id, self.paths(id).state, err)

    def names(self) -> dict[str, str]:
        """id -> name of every container, reading only that field: a name check or a lookup by
        name costs ~20 us per container, not a whole spec each (~100 us)."""
        out = {}
        for id in self._ids():
            try:
                out[id] = records.read_dict(self.paths(id).spec)["name"]
            except FileNotFoundError:
                continue
            except (DamagedRecordError, KeyError, TypeError):
                spec = self._spec(id)
                if spec is not None:
                    out[id] = spec.name
        return out

    def _info(self, spec: ContainerSpec, state: dict | None = None) -> ContainerInfo:
        p = self.paths(spec.id)
        s = st.read(p.state) if state is None else state
        status = st.derive_status(s)
        endpoints: tuple[Any, ...] = ()
        if s.get("endpoints"):
            from composer.runtime.net.records import Endpoint

            endpoints = tuple(Endpoint.from_dict(e) for e in s["endpoints"])
        return ContainerInfo(
            id=spec.id, name=spec.name, spec=spec, status=status,
            pid=s.get("pid") if status in ("running", "paused") else None,
            exit_code=s.get("exit_code"), oom_killed=bool(s.get("oom_killed")), error=s.get("error"),
            created_at=s.get("created_at", _mtime(p.spec)), started_at=s.get("started_at"),
            finished_at=s.get("finished_at"), restart_count=int(s.get("restart_count", 0)),
            endpoints=endpoints, ports=tuple(PortMapping(**d) for d in s.get("ports", ())),
            monitor_pid=s.get("monitor_pid") if st.monitor_alive(s) else None,
            health=_health(spec, s, status), health_log=tuple((s.get("health") or {}).get("log") or ()),
            monitor_error=_monitor_error(s) if "monitor_error" in s else None,
            supervised=status not in ("running", "paused") or st.monitor_alive(s),
        )

    # ------------------------------------------------------------ queries

    def get(self, ref: str) -> ContainerInfo:
        """By full id, name, or unique id prefix."""
        if ID_RE.match(ref):  # a full id: one file, not a scan of every container (O(n^2) in a stack)
            spec = self._spec(ref) if os.path.isdir(self.paths(ref).data) else None
            if spec is not None:
                return self._info(spec)
        names = self.names()
        found = [id for id, name in names.items() if name == ref]
        if not found and ref:
            found = [id for id in names if id.startswith(ref)]
            if len(found) > 1:
                raise ConflictError(f"multiple containers match {ref!r}: give more of the id")
        spec = self._spec(found[0]) if found else None
        if spec is None:
            raise NotFoundError(f"no such container: {ref}")
        return self._info(spec)

    def list(self, all: bool = False, labels: dict[str, str] | None = None) -> list[ContainerInfo]:
        out = []
        for spec in self._specs():
            if labels and any(spec.label(k) != v for k, v in labels.items()):
                continue
            info = self._info(spec)
            if all or info.running:
                out.append(info)
        if all and not labels:  # dirs without a spec (older versions): shown "dead", so `rm -f ID` can go
            from composer.runtime.container import inventory

            out += [replace(self._info(self._stand_in(id, None)), status="dead") for id in inventory.specless(self)]
        return sorted(out, key=lambda i: i.created_at or 0, reverse=True)

    def reclaim_incomplete(self) -> list[str]:
        """Delete what a killed create or remove left in the data dir (staging dirs, container dirs
        without a spec that nothing runs from). Returns the paths and ids reclaimed."""
        from composer.errors import ComposerError
        from composer.runtime.container import inventory

        gone = inventory.sweep(self)
        for id in inventory.specless(self):
            try:
                inventory.reclaim(self, id)
                gone.append(id)
            except (ComposerError, OSError):
                continue  # something runs from it: `container rm -f ID`
        return gone

    # ------------------------------------------------------------ create

    def create(self, spec: ContainerSpec) -> ContainerInfo:
        from composer.runtime.container import lifecycle

        return lifecycle.create(self, spec)

    @staticmethod
    def check(spec: ContainerSpec) -> None:
        """What create would refuse in `spec` that needs no host object (no layers, sources, peers)."""
        from composer.runtime.container import lifecycle

        lifecycle.check(spec, host=False)

    def start(self, id: str, *, attach_stdio: bool = False) -> ContainerInfo:
        from composer.runtime.container import lifecycle

        return lifecycle.start(self, self.get(id), attach_stdio=attach_stdio)

    def run(self, spec: ContainerSpec, *, attach_stdio: bool = False) -> ContainerInfo:
        """create + start; a failed start removes the container again (nothing left behind)."""
        info = self.create(spec)
        try:
            return self.start(info.id, attach_stdio=attach_stdio)
        except BaseException:
            self.remove(info.id, force=True)
            raise

    def stop(self, id: str, timeout: float | None = None) -> ContainerInfo:
        from composer.runtime.container import teardown

        return teardown.stop(self, self.get(id), timeout)

    def kill(self, id: str, sig: int = signal.SIGKILL, *, removing: bool = False) -> None:
        """removing: the caller removes the container next (see teardown.kill)."""
        from composer.runtime.container import teardown

        teardown.kill(self, self.get(id), sig, removing=removing)

    def remove(self, id: str, force: bool = False, *, settle_links: bool = True) -> None:
        """settle_links=False: return before the container's host veths are gone (they go within
        ms, a detached child makes sure): for a caller about to exit, as `run --rm`."""
        from composer.runtime.container import teardown

        try:
            info = self.get(id)
        except NotFoundError:
            from composer.runtime.container import inventory

            found = [i for i in inventory.specless(self) if i == id or (len(id) >= 4 and i.startswith(id))]
            if len(found) != 1:
                raise
            inventory.reclaim(self, found[0], force=force)  # a dir without a spec
            return
        teardown.remove(self, info, force, settle_links=settle_links)

    def pause(self, id: str) -> None:
        from composer.runtime.container import teardown

        teardown.set_paused(self, self.get(id), True)

    def unpause(self, id: str) -> None:
        from composer.runtime.container import teardown

        teardown.set_paused(self, self.get(id), False)

    def wait(self, id: str, timeout: float | None = None) -> ContainerInfo:
        """Until the container has exited and its monitor has recorded it (or timeout)."""
        from composer.runtime.container import lifecycle

        info = self.get(id)
        if info.id in lifecycle._ATTACHED and timeout is None:  # we started it: the monitor reports
            lifecycle.wait_attached(info.id)
            self._wait_recorded(info, None)
            final = self._info(info.spec)
            if info.spec.auto_remove:  # we told the monitor that we remove it
                self.remove(info.id, force=True, settle_links=self.settle_links)
            return final
        return self._wait_recorded(info, timeout)

    def _wait_recorded(self, info: ContainerInfo, timeout: float | None) -> ContainerInfo:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            s = st.read(self.paths(info.id).state)
            if st.monitor_alive(s) and not s.get("finished_at"):
                target = (s["monitor_pid"], s.get("monitor_start"))
            elif st.derive_status(s) in ("running", "paused"):
                target = (s["pid"], s.get("pid_start"))
            else:
                try:
                    return self._info(info.spec)
                except FileNotFoundError:
                    return info
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return self._info(info.spec, s)
            _wait_pid(*target, left)

    def exec(self, id: str, argv: list[str] | tuple[str, ...], *, env=(), cwd: str | None = None,
             user: str | None = None, tty: bool = False, detach: bool = False, interactive: bool = True) -> int:
        from composer.runtime.container import execute

        info = self.get(id)
        if info.status != "running":
            raise ConflictError(f"container {info.name} is not running")
        s = st.read(self.paths(info.id).state)
        return execute.run(info, s, list(argv), env=tuple(env), cwd=cwd, user=user, detach=detach, tty_=tty,
                           interactive=interactive, state_dir=self.state_dir)

    def logs(self, id: str, *, follow: bool = False, since: float | None = None,
             tail: int | None = None) -> Iterator[LogRecord]:
        from composer.runtime.container import logread

        info = self.get(id)
        p = self.paths(info.id)
        yield from logread.records(p.log, p.state, info.spec.log.max_file, follow=follow, since=since, tail=tail)

    def copy_from(self, id: str, src: str, dest: str, *, archive: bool = False, follow: bool = False) -> None:
        """`cp CONTAINER:SRC DEST` (DEST "-": a tar to stdout), running or not (container.copy)."""
        from composer.runtime.container import copy

        copy.copy_out(self, self.get(id), src, dest, archive=archive, follow=follow)

    def copy_to(self, id: str, src: str, dest: str, *, archive: bool = False, follow: bool = False) -> None:
        """`cp SRC CONTAINER:DEST` (SRC "-": a tar from stdin), running or not (container.copy)."""
        import sys

        from composer.runtime.container import copy

        copy.copy_in(self, self.get(id), src, dest, archive=archive, follow=follow, stdin=sys.stdin.buffer)

    def export(self, id: str, out) -> None:
        """The container's root file system as a tar written to the binary file `out`."""
        from composer.runtime.container import copy

        copy.export(self, self.get(id), out)

    def stats(self, id: str):
        """A reading of the container's resource counters (container.stats.Sample)."""
        from composer.runtime.container import stats

        return stats.sample(self, self.get(id))

    def set_hosts(self, id: str, entries) -> None:
        """Rewrite /etc/hosts of a container in place (peers come and go)."""
        from composer.runtime.net import etcfiles

        info = self.get(id)
        p = self.paths(info.id)
        with st.Lock(p.state):
            s = st.read(p.state)
            if not os.path.exists(os.path.join(p.state, "hosts")):
                return
            eps = s.get("endpoints") or ()
            etcfiles.write_in_place(os.path.join(p.state, "hosts"),
                                    etcfiles.hosts_content(entries, own_hosts(info.spec, eps),
                                                           gateway=eps[0]["gateway"] if eps else None))


def _monitor_error(state: dict) -> str | None:
    from composer.runtime.monitor.failure import summary

    return summary(state)


def _health(spec: ContainerSpec, s: dict, status: str) -> str | None:
    return st.health(spec.healthcheck is not None, s, status)


def own_hosts(spec: ContainerSpec, endpoints) -> list[tuple[str, list[str]]]:
    """The container's own /etc/hosts lines: its address on each network with its names."""
    hostname = spec.hostname or spec.id[:12]
    out = []
    for ep in endpoints:
        ep = ep if isinstance(ep, dict) else ep.to_dict()
        names = [hostname] if not spec.domainname else [f"{hostname}.{spec.domainname}", hostname]
        out.append((ep["ipv4_address"], names))
    return out


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _wait_pid(pid: int, start: int | None, timeout: float | None) -> None:
    """Block until the process exits (pidfd), or timeout. Returns at once if it is not ours."""
    if not is_alive(pid, start):
        return
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError:  # EINVAL: no thread-group leader under that pid this instant (mid-exit or mid-exec): poll
        deadline = None if timeout is None else time.monotonic() + timeout
        while is_alive(pid, start) and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.01)
        return
    try:
        if not is_alive(pid, start):  # the pid was reused between the check and the open
            return
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def auto_remove_main(argv: list[str]) -> int:
    """argv: --auto-remove ID --state-dir S --data-dir D. What a monitor execs into (python -c)
    for --rm when nobody attached is left to remove the container."""
    args = dict(zip(argv[::2], argv[1::2]))
    rt = Runtime(args["--state-dir"], args["--data-dir"])
    try:
        rt.remove(args["--auto-remove"], force=True)
    except NotFoundError:
        pass
    return 0

