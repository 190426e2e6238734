"""cgroup v2 under systemd: each container in a delegated transient scope, as podman and runc's
systemd driver do, so that systemd's rules hold (a process that is not systemd writes only into a
subtree systemd delegated to it) and containers sit in one place, `composer.slice`, under one
accounting, whether `up` ran from a login session, a service, a timer, cron or CI.

    /sys/fs/cgroup/composer.slice/composer-<id>.scope/   Delegate=yes; systemd's part ends here
        supervisor/   the container's monitor (and, briefly, its start helper)
        container/    PID 1 and every process of the container: the container's cgroup, its limits,
                      its device program, the root of its cgroup namespace

The scope is started over D-Bus (Manager.StartTransientUnit, jeepney) with PIDs=[the monitor], right
after the launcher forked it, so the monitor is out of the caller's session or service: a logout,
`loginctl terminate-session` or the end of the service that ran `up` leaves it and its container
running. The monitor holds the scope, so the scope (and the container's cgroup, with its OOM count)
outlives PID 1 across restarts; systemd collects the scope once its last process, the monitor, exits.
Below the scope is delegated: systemd never writes there, so `daemon-reload` and `set-property` keep
the container's limits, which this driver writes into container/ as the v2 driver does. What only
works one level up goes to the scope as unit properties: CPUWeight (shares between containers) and
MemoryLow (a protection is bounded by its parent's); TasksMax=infinity replaces systemd's default
(15% of pid_max), so pids.max in container/ is the container's only task limit.

Imported only where detect() chose this driver (systemd is PID 1, cgroup v2); jeepney with it."""

from __future__ import annotations

import errno
import os
import threading
import time

from composer.errors import ContainerError, HostError
from composer.runtime.cgroups import base as cg
from composer.runtime.cgroups import devices
from composer.runtime.cgroups.base import CgroupPaths
from composer.runtime.cgroups.limits import Limits, check_name, validate
from composer.runtime.cgroups.v2 import OPTIONAL, V2Driver, _required, shares_to_weight
from composer.runtime.spec import Resources

SLICE = "composer.slice"
CONTAINER = "container"
SUPERVISOR = "supervisor"
JOB_TIMEOUT = 30.0  # a scope's start job is quick; systemd under load (or in TCG) is not
_INFINITY = 2**64 - 1


def unit_name(name: str) -> str:
    return f"composer-{name}.scope"


class SystemdDriver(V2Driver):
    manager = "systemd"

    def __init__(self, root_dir: str) -> None:
        super().__init__(root_dir, root_dir)

    def base(self) -> str:
        return os.path.join(self._root, SLICE)

    def base_dirs(self) -> list[str]:
        return [self.base()]

    def scope_dir(self, name: str) -> str:
        return os.path.join(self.base(), unit_name(name))

    def layout(self) -> dict[str, str]:
        return {"cgroup_version": "2", "manager": "systemd",
                "containers": os.path.join(self.scope_dir("<id>"), CONTAINER),
                "delegation": f"a transient scope per container in {SLICE}, Delegate=yes (systemd's D-Bus API); "
                              f"the monitor in {SUPERVISOR}/"}

    def plan(self, name: str, resources: Resources) -> CgroupPaths:
        check_name(name)
        validate(resources)
        return CgroupPaths(2, (("", os.path.join(self.scope_dir(name), CONTAINER)),))

    def create(self, name: str, resources: Resources, supervisor: int | None = None) -> CgroupPaths:
        """Start the scope with `supervisor` (the container's monitor) in it, then make container/
        with the limits and the device program, before PID 1 joins it (attach)."""
        check_name(name)
        lim = validate(resources)
        if not supervisor:
            raise ContainerError("the systemd cgroup driver needs the process that holds the container's scope")
        scope = self.scope_dir(name)
        start_scope(unit_name(name), supervisor, _properties(lim))
        leaf = os.path.join(scope, CONTAINER)
        cg.mkdir_base(os.path.join(scope, SUPERVISOR))
        cg.mkdir_new(leaf)
        try:
            _enable(scope, _required(lim))
            self._write_limits(leaf, lim)
            devices.attach(leaf, lim.devices)
        except BaseException:
            self._undo([leaf])  # the scope goes with its holder (systemd collects it)
            raise
        return CgroupPaths(2, (("", leaf),))

    def find_leftovers(self, name_prefix: str = "") -> list[str]:
        """Scopes of containers (a crashed run's): remove_dir() stops one (systemd kills what is left
        in it and collects the unit)."""
        want = unit_name(name_prefix)[: -len(".scope")]
        return sorted(d for d in cg._subdirs(self.base()) if os.path.basename(d).startswith(want))

    def remove_dir(self, path: str) -> None:
        """A scope goes through systemd (StopUnit), never by rmdir alone: systemd does not learn that
        a unit's cgroup was removed under it, keeps the unit, and makes its directory again the next
        time it realizes the slice (another scope starting there). Anything else: rmdir."""
        name = os.path.basename(path)
        if os.path.dirname(path) == self.base() and name.startswith("composer-") and name.endswith(".scope"):
            stop_unit(name)
        cg.remove_dir(path)  # gone already, or left by a systemd that did not remove it


def _properties(lim: Limits) -> list[tuple[str, tuple[str, object]]]:
    props: list[tuple[str, tuple[str, object]]] = [
        ("Description", ("s", "composer container")), ("Slice", ("s", SLICE)), ("Delegate", ("b", True)),
        ("TasksMax", ("t", _INFINITY))]
    if lim.shares is not None:
        props.append(("CPUWeight", ("t", shares_to_weight(lim.shares))))
    if lim.reservation is not None:
        props.append(("MemoryLow", ("t", lim.reservation)))
    return props


def _enable(scope: str, required: set[str]) -> None:
    """The scope's own processes (the monitor, and its start helper and PID 1 when they were forked
    after systemd moved the monitor) go to supervisor/, then the controllers are turned on for the
    scope's children: v2 allows that only in a cgroup with no processes of its own."""
    avail = set((cg.read_file(os.path.join(scope, "cgroup.controllers")) or "").split())
    missing = sorted(required - avail)
    if missing:
        raise HostError(f"systemd did not delegate the {' '.join(missing)} controller to {scope}",
                        hint="COMPOSER_CGROUP_MANAGER=cgroupfs makes composer manage the cgroups itself")
    todo = " ".join("+" + c for c in sorted((required | set(OPTIONAL)) & avail))
    if not todo:
        return
    for _ in range(100):
        for pid in cg.read_pids(scope):
            try:
                cg.write_file(os.path.join(scope, SUPERVISOR, "cgroup.procs"), str(pid))
            except ProcessLookupError:
                pass
            except OSError as e:
                if e.errno != errno.ESRCH:
                    raise ContainerError(f"cannot move process {pid} into {scope}/{SUPERVISOR}: {e.strerror}") from None
        try:
            cg.write_file(os.path.join(scope, "cgroup.subtree_control"), todo)
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise HostError(f"cannot enable cgroup controllers in {scope}: {e.strerror}") from None
    raise ContainerError(f"cannot enable cgroup controllers in {scope}: processes keep appearing in it")


# ---------------------------------------------------------------- D-Bus (jeepney)

_local = threading.local()  # one connection per thread: `up` starts containers on a thread pool


def _bus():
    conn = getattr(_local, "conn", None)
    if conn is None:
        from jeepney import MatchRule
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        try:
            conn = open_dbus_connection(bus="SYSTEM")
        except (OSError, KeyError) as e:
            raise HostError(f"cannot reach systemd over D-Bus (the system bus): {e}",
                            hint="COMPOSER_CGROUP_MANAGER=cgroupfs makes composer manage the cgroups itself") from None
        fields = {"type": "signal", "path": "/org/freedesktop/systemd1", "interface": "org.freedesktop.systemd1.Manager",
                  "member": "JobRemoved"}
        # the bus matches a well-known sender by its owner; jeepney's local filter compares names
        # literally (signals carry systemd's unique name), so only the bus's rule names the sender
        conn.send_and_get_reply(message_bus.AddMatch(MatchRule(sender="org.freedesktop.systemd1", **fields)))
        rule = MatchRule(**fields)
        _call(conn, "Subscribe", None, ())  # JobRemoved reaches subscribers
        _local.conn, _local.rule = conn, rule
    return conn


def _call(conn, method: str, signature: str, args: tuple):
    from jeepney import DBusAddress, new_method_call
    from jeepney.wrappers import unwrap_msg

    mgr = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1",
                      interface="org.freedesktop.systemd1.Manager")
    return unwrap_msg(conn.send_and_get_reply(new_method_call(mgr, method, signature, args), timeout=JOB_TIMEOUT))


def _run_job(method: str, signature: str, args: tuple) -> str:
    """Call a Manager method that queues a job; wait for its JobRemoved; the job's result."""
    conn = _bus()
    with conn.filter(_local.rule, bufsize=1000) as queue:
        job = _call(conn, method, signature, args)[0]
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HostError(f"systemd did not finish {method} of {args[0]} within {JOB_TIMEOUT:.0f} s")
            _id, path, _unit, result = conn.recv_until_filtered(queue, timeout=left).body
            if path == job:
                return result


def start_scope(unit: str, pid: int, props: list) -> None:
    from jeepney.wrappers import DBusErrorResponse

    args = (unit, "fail", [("PIDs", ("au", [pid]))] + props, [])
    for attempt in range(2):
        try:
            result = _run_job("StartTransientUnit", "ssa(sv)a(sa(sv))", args)
        except DBusErrorResponse as e:
            if e.name == "org.freedesktop.systemd1.UnitExists" and attempt == 0:
                stop_unit(unit)  # an earlier run's, stopping or not collected yet
                continue
            raise HostError(f"systemd refused to start {unit}: {e.data[0] if e.data else e.name}") from None
        if result != "done":
            raise HostError(f"systemd could not start {unit}: the job's result is {result!r}",
                            hint=f"journalctl -u {unit}")
        return


def stop_unit(unit: str) -> None:
    """Stop a unit (kills what is left in it) and let systemd collect it; a missing unit is fine."""
    from jeepney.wrappers import DBusErrorResponse

    try:
        _run_job("StopUnit", "ss", (unit, "replace"))
    except DBusErrorResponse as e:
        if e.name != "org.freedesktop.systemd1.NoSuchUnit":
            raise HostError(f"systemd refused to stop {unit}: {e.data[0] if e.data else e.name}") from None
    try:
        _call(_bus(), "ResetFailedUnit", "s", (unit,))
    except DBusErrorResponse:
        pass
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:  # collected once inactive: a new scope of that name may start
        try:
            _call(_bus(), "GetUnit", "s", (unit,))
        except DBusErrorResponse:
            return
        time.sleep(0.02)


def running() -> bool:
    """systemd is the init system: PID 1 is systemd and it made /run/systemd/system (sd_booted)."""
    if not os.path.isdir("/run/systemd/system"):
        return False
    try:
        with open("/proc/1/comm") as f:
            return f.read().strip() == "systemd"
    except OSError:
        return False
