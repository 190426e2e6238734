"""Create and start, behind Runtime (stop, kill, pause and remove are runtime.container.teardown). Each takes
the container's lock; each leaves nothing behind when it fails (no upper dir, cgroup, link or state)."""

from __future__ import annotations

import _socket  # socket.py (enums, selectors) costs `container run` ~2 ms; this is its C half
import json
import os
import sys
from dataclasses import asdict, dataclass, replace

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)

from composer import faults
from composer.errors import ConflictError, ContainerError
from composer.runtime.container import state as st
from composer.runtime.container.teardown import kill_wait, quiet, rmtree
from composer.runtime.spec import ContainerSpec, NetworkAttachment, attachments
from composer.runtime.syscalls import is_alive

if TYPE_CHECKING:
    from composer.runtime.container.containers import ContainerInfo, Runtime

HANDSHAKE_TIMEOUT = 30.0


def _err(message: str, code: int) -> ContainerError:
    err = ContainerError(message)
    err.exit_code = code
    return err


# ---------------------------------------------------------------- create


def check(spec: ContainerSpec, *, host: bool = True) -> None:
    """Every refusal create makes that needs no host object: `up` runs it for each service before it
    makes networks or volumes. host=False leaves out what depends on other objects (layers on disk,
    bind sources, the container whose network is joined)."""
    from composer.runtime.container.containers import ID_RE, NAME_MAX, NAME_RE

    if not ID_RE.match(spec.id):
        raise ContainerError(f"invalid container id {spec.id!r}: expected 64 hex digits")
    if not NAME_RE.match(spec.name) or len(spec.name) > NAME_MAX:
        raise ContainerError(f"invalid container name {spec.name[:80]!r}: use at most {NAME_MAX} characters "
                             "[a-zA-Z0-9_.-], starting with a letter or digit")
    _check_nul(spec)
    for what, value in (("hostname", spec.hostname), ("domainname", spec.domainname)):
        if len(value.encode()) > 64:  # HOST_NAME_MAX: sethostname(2) refuses more
            raise ContainerError(f"invalid {what} {value[:40]!r}...: at most 64 bytes (the kernel's limit)")
    if not spec.argv:
        raise ContainerError("no command specified")
    if not spec.layers:
        raise ContainerError("the image has no layers")
    for layer in spec.layers if host else ():
        if not os.path.isdir(layer):
            raise ContainerError(f"image layer {layer} is missing (image removed?)")
    for m in spec.mounts:
        if not m.target.startswith("/"):
            raise ContainerError(f"invalid mount target {m.target!r}: must be an absolute path")
        if host and m.type == "bind" and not os.path.exists(m.source):
            raise ContainerError(f"invalid mount config: bind source path does not exist: {m.source}")
        if m.type not in ("bind", "tmpfs"):
            raise ContainerError(f"unsupported mount type {m.type!r}")
    if host:
        _check_network_mode(spec)
    from composer.runtime.cgroups.limits import validate
    from composer.runtime.security import caps
    from composer.runtime.fs import cgroupns

    if spec.cgroupns not in cgroupns.MODES:
        raise ContainerError(f"invalid cgroup namespace mode {spec.cgroupns!r}: use host or private")

    validate(_resources(spec))
    try:
        caps.resolve(spec.cap_add, spec.cap_drop, spec.privileged)
    except ValueError as e:
        raise ContainerError(str(e)) from None


def _check_nul(spec: ContainerSpec) -> None:
    """A NUL byte cannot pass exec(2), a path or a name: say which value holds one."""
    fields = [("command", a) for a in spec.argv] + [("environment variable", f"{k}={v}") for k, v in spec.env]
    fields += [("working directory", spec.cwd), ("user", spec.user), ("hostname", spec.hostname)]
    fields += [("mount", f"{m.source}:{m.target}") for m in spec.mounts]
    for what, value in fields:
        if "\0" in value:
            raise ContainerError(f"invalid {what} {value.split(chr(0))[0][:40]!r}...: contains a NUL byte")


def create(rt: "Runtime", spec: ContainerSpec) -> "ContainerInfo":
    check(spec)
    base = os.path.join(rt.data_dir, "containers")
    os.makedirs(base, exist_ok=True)
    p = rt.paths(spec.id)
    from composer.runtime.container import inventory

    with st.Lock(base):  # name uniqueness across processes
        inventory.sweep_staging(base)  # a create or remove killed midway (we hold the lock: its maker is dead)
        for other, name in rt.names().items():
            if name == spec.name or other == spec.id:
                raise ConflictError(f'the container name "/{spec.name}" is already in use by container "{other}"')
        # Made under a staging name and renamed into place with its spec: a container dir without a
        # spec never exists, whenever this process dies.
        stage = inventory.staging_dir(base, spec.id)
        placed = False
        try:
            for sub in ("upper", "work", "rootfs"):
                os.makedirs(os.path.join(stage, sub))
            faults.point("create.dir")
            with open(os.path.join(stage, "spec.json"), "w") as f:
                f.write(spec.to_json())
            faults.point("create.spec")
            os.rename(stage, p.data)
            placed = True
            faults.point("create.placed")
            with st.Lock(p.state):  # name and labels kept here too: `down` finds it if spec.json is damaged
                st.write(p.state, {"created_at": st.now(), "name": spec.name, "data_dir": rt.data_dir,
                                   "labels": [list(kv) for kv in spec.labels]})
        except BaseException:
            rmtree(p.data if placed else stage)
            rmtree(p.state)
            raise
    return rt._info(spec)


def _resources(spec: ContainerSpec):
    """The cgroup resources, with what the device policy must also allow: the spec's devices, and
    every device for a privileged container (docker: as every capability)."""
    extra = tuple(d.rule for d in spec.devices) + (("a",) if spec.privileged else ())
    if not extra:
        return spec.resources
    return replace(spec.resources, device_rules=spec.resources.device_rules + extra)


def _check_network_mode(spec: ContainerSpec) -> None:
    mode = spec.network_mode
    if mode.startswith("container:"):
        if not mode[10:]:
            raise ContainerError("network mode container: needs a container name or id")
        # as docker: the namespace's owner decides addresses and ports
        if spec.networks or spec.ports:
            what = "port publishing" if spec.ports else "network attachments"
            raise ContainerError(f"conflicting options: {what} and network mode {mode} (the network belongs "
                                 "to that container)")
    elif mode not in ("none", "bridge", "host"):
        raise ContainerError(f"unsupported network mode {mode!r}: use none, bridge, host or container:<name|id>")


# ---------------------------------------------------------------- start


@dataclass(frozen=True)
class _NetTarget:
    """network_mode container:x: whose network namespace, /etc files and hostname to share."""

    netns: str  # /proc/<target pid 1>/ns/net
    etc_files: dict[str, str]
    hostname: str
    domainname: str


def _net_target(rt: "Runtime", spec: ContainerSpec) -> _NetTarget | None:
    """The running container whose network namespace `spec` joins (docker: its hosts, resolv.conf
    and hostname too), or a ContainerError naming it when it is not running."""
    if not spec.network_mode.startswith("container:"):
        return None
    from composer.errors import NotFoundError

    ref = spec.network_mode[10:]
    try:
        target = rt.get(ref)
    except NotFoundError:
        raise ContainerError(f"cannot join the network of container {ref}: no such container") from None
    if target.id == spec.id:
        raise ContainerError(f"container {spec.name} cannot join its own network namespace")
    s = st.read(rt.paths(target.id).state)
    if target.status != "running" or not is_alive(s.get("pid"), s.get("pid_start")):
        raise ContainerError(f"cannot join the network of container {target.name}: it is not running")
    if target.spec.network_mode == "host":
        raise ContainerError(f"cannot join the network of container {target.name}: it uses the host's network")
    tdir = rt.paths(target.id).state
    etc = {f"/etc/{n}": os.path.join(tdir, n) for n in ("hosts", "resolv.conf") if os.path.exists(os.path.join(tdir, n))}
    return _NetTarget(f"/proc/{s['pid']}/ns/net", etc, target.spec.hostname or target.id[:12], target.spec.domainname)


def _child_config(rt: "Runtime", spec: ContainerSpec, etc_files: dict[str, str],
                  target: _NetTarget | None = None) -> dict:
    from composer.runtime.security import caps

    p = rt.paths(spec.id)
    return {
        "rootfs": os.path.join(p.data, "rootfs"), "layers": list(spec.layers),
        "upper": os.path.join(p.data, "upper"), "work": os.path.join(p.data, "work"),
        "mounts": [asdict(m) for m in spec.mounts], "etc_files": {**etc_files, **(target.etc_files if target else {})},
        # "netns": own uts (sethostname) and lo up; a joined netns has lo up already, harmlessly redone
        "netns": spec.network_mode != "host", "shm_size": spec.shm_size, "read_only": spec.read_only,
        "hostname": target.hostname if target else (spec.hostname or spec.id[:12]),
        "domainname": target.domainname if target else spec.domainname,
        "sysctls": [list(kv) for kv in spec.sysctls], "user": spec.user, "env": [list(kv) for kv in spec.env],
        "cwd": spec.cwd or "/", "ulimits": [asdict(u) for u in spec.ulimits],
        "oom_score_adj": spec.resources.oom_score_adj, "no_new_privileges": spec.no_new_privileges,
        "caps": caps.resolve(spec.cap_add, spec.cap_drop, spec.privileged), "last_cap": caps.last_cap(),
        "argv": list(spec.argv), "init": spec.init, "seccomp": _seccomp_hex(rt, spec),
        "devices": [asdict(d) for d in spec.devices],
    }


def _seccomp_hex(rt: "Runtime", spec: ContainerSpec) -> str | None:
    """The container's BPF program, built here (cached per profile and capabilities) so that the
    lean launcher's child only loads bytes; None = unconfined."""
    from composer.runtime.security import seccomp

    try:
        prog = seccomp.program_for(rt.state_dir, spec.seccomp, spec.cap_add, spec.cap_drop, spec.privileged)
    except ValueError as e:
        raise _err(f"cannot build the seccomp filter: {e}", 125) from None
    return prog.hex() if prog else None


def _ns_flags(spec: ContainerSpec) -> int:
    from composer.runtime import syscalls as sc

    flags = sc.CLONE_NEWNS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID
    if spec.network_mode != "host":
        flags |= sc.CLONE_NEWUTS  # container:x shares only the netns (as docker), keeps its own uts
    if spec.network_mode != "host" and not spec.network_mode.startswith("container:"):
        flags |= sc.CLONE_NEWNET  # container:x: the monitor setns()es into req["join_netns"] instead
    return flags


CGROUP_LABEL = "trusted.composer"  # cgroupfs (v1 and v2) keeps trusted.* attributes for root


def label_cgroup(paths, spec: ContainerSpec) -> None:
    """Name and composer.* labels on the container's cgroup dir (best effort, one setxattr): what finds
    a container whose spec.json is damaged after its state dir was lost too (runtime.container.rebuild)."""
    text = json.dumps({"name": spec.name, "labels": [[k, v] for k, v in spec.labels if k.startswith("composer.")
                                                     and k != "composer.config-hash"]})
    for _, d in paths.dirs[:1]:
        try:
            os.setxattr(d, CGROUP_LABEL, text.encode())
        except OSError:
            pass


class _Starter:
    """One start: owns what it made until the container runs, undoes all of it on failure."""

    def __init__(self, rt: "Runtime", info: "ContainerInfo", attach_stdio: bool) -> None:
        self.rt, self.info, self.spec = rt, info, info.spec
        self.p = rt.paths(info.id)
        self.attach = attach_stdio
        self.cgroup = None
        self.driver = None
        self.sock: _socket.socket | None = None
        self.networked = False
        self.netconf: list[dict] = []  # addresses the start helper sets inside (runtime.net.rtnl.configure_inside)
        self.pid1 = 0

    def recv(self) -> dict:
        assert self.sock is not None
        data = self.sock.recv(65536)
        if not data:
            raise ContainerError("the container monitor exited during start")
        return json.loads(data)

    def run(self) -> None:
        from composer.runtime.cgroups import base as cgroups
        from composer.runtime.monitor import launcher
        from composer.runtime.net import etcfiles
        from composer.runtime.fs import cgroupns

        spec = self.spec
        nets = attachments(spec)
        if nets and spec.ports:
            self.rt.network.ports.check_ports(spec.ports, _exclude=spec.id)
        target = _net_target(self.rt, spec)
        self.driver = cgroups.default_driver()
        resources = _resources(spec)
        cgroup = self.driver.plan(spec.id, resources)  # made below, while the monitor forks
        etc = etcfiles.write_all(self.p.state, hostname=spec.hostname or spec.id[:12], domainname=spec.domainname,
                                 hosts=spec.hosts, dns=spec.dns, dns_search=spec.dns_search)
        if spec.network_mode == "host":
            etc = {"/etc/hosts": "/etc/hosts", "/etc/resolv.conf": "/etc/resolv.conf"}
        req = {
            "id": spec.id, "name": spec.name, "cfg": _child_config(self.rt, spec, etc, target),
            "ns_flags": _ns_flags(spec), "join_netns": target.netns if target else None,
            "state_dir": self.p.state, "log": self.p.log if spec.log.driver != "none" else None,
            "cgroup": cgroup.to_dict(), "auto_remove": spec.auto_remove,
            "tty": spec.tty, "stdin_open": spec.stdin_open,  # PID 1's stdio (runtime.monitor.tty)
            "runtime_state_dir": self.rt.state_dir, "runtime_data_dir": self.rt.data_dir,
            # the monitor's own work: restarts, healthchecks, log rotation
            "restart": asdict(spec.restart), "spec_path": self.p.spec,
            "healthcheck": asdict(spec.healthcheck) if spec.healthcheck else None,
            "log_max_size": spec.log.max_size, "log_max_file": spec.log.max_file,
        }
        req["cfg"]["cgroup"] = cgroupns.config(spec.cgroupns, req["cgroup"])  # /sys/fs/cgroup inside
        ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        self.sock = ours
        ours.settimeout(HANDSHAKE_TIMEOUT)
        fds = [theirs.fileno()] + ([sys.stdout.fileno(), sys.stderr.fileno()] if self.attach else [])
        if self.attach and spec.stdin_open and _valid_fd(0):
            fds.append(0)  # the monitor forwards it to PID 1
        if self.attach:
            sys.stdout.flush()
            sys.stderr.flush()
        try:
            monitor = launcher.for_state_dir(self.rt.state_dir).spawn(req, fds)
        except OSError as e:
            raise _err(f"cannot start the container monitor: {e}", 125) from None
        finally:
            theirs.close()
        # the monitor forks C1, which unshares and forks PID 1, meanwhile (~2 ms, on another CPU):
        # what needs no PID 1 happens now; PID 1 waits for "go"
        faults.point("start.monitor")
        for leftover in self.driver.find_leftovers(spec.id):  # from a crashed earlier run
            self.driver.remove_dir(leftover)
        self.cgroup = self.driver.create(spec.id, resources, supervisor=monitor)
        label_cgroup(self.cgroup, spec)  # who it is, if spec.json and state.json are both lost
        faults.point("start.cgroup")
        reserved = self._reserve(nets)
        hello = self.recv()
        if "error" in hello:
            raise _err(hello["error"], hello.get("code", 125))
        self.pid1 = hello["pid"]
        self.driver.attach(self.cgroup, self.pid1)
        endpoints, ports = [], []
        if nets:
            endpoints = [self.rt.network.plumb(ep, self.pid1, inside=False) for ep in reserved]
            self.netconf = [self.rt.network.inside_config(ep) for ep in endpoints]
            if spec.ports and endpoints:
                ports = [asdict(m) for m in self.rt.network.ports.publish(spec.id, endpoints[0].ipv4_address, spec.ports)]
        if endpoints:
            from composer.runtime.container.containers import own_hosts

            etcfiles.write_in_place(etc["/etc/hosts"], etcfiles.hosts_content(spec.hosts, own_hosts(spec, endpoints),
                                                                              gateway=endpoints[0].gateway))
        faults.point("start.network")
        s = st.read(self.p.state)
        s.update(pid=self.pid1, pid_start=hello["pid_start"], monitor_pid=hello["monitor_pid"],
                 monitor_start=hello["monitor_start"], started_at=st.now(), finished_at=None, exit_code=None,
                 oom_killed=False, error=None, paused=False, cgroup=self.cgroup.to_dict(),
                 stop_requested=False, restarting=False, restart_count=0, health=None,
                 endpoints=[e.to_dict() for e in endpoints], ports=ports)
        s.pop("monitor_error", None)  # an earlier run's monitor's (runtime.monitor.failure)
        st.write(self.p.state, s)
        faults.point("start.state")
        # the start helper, already in the container's netns, sets the addresses: no setns here
        ours.send(json.dumps({"go": True, "net": self.netconf}).encode() if self.netconf else b'{"go": true}')
        reply = self.recv()
        if "error" in reply:
            raise _err(reply["error"], reply.get("code", 125))
        faults.point("start.done")
        if not self.attach and not spec.auto_remove:
            ours.close()  # nobody listens for the exit: the monitor just records it
            self.sock = None

    def _reserve(self, nets: tuple[NetworkAttachment, ...]) -> list:
        """Each network's endpoint recorded (address, veth name); plumbed once PID 1 exists."""
        if not nets:
            return []
        self.networked = True  # from here on, undo releases what is recorded
        return [self.rt.network.reserve(att.network, self.spec.id, att, att.interface or f"eth{i}")
                for i, att in enumerate(nets)]

    def undo(self) -> None:
        """After a failure: PID 1 (if any) gone, then network, cgroup, state back to 'created'."""
        if self.sock is not None:
            self.sock.close()  # the monitor sees EOF: PID 1 never execs
            self.sock = None
        if self.pid1:
            kill_wait(self.pid1, None, 5.0)
        if self.networked:
            quiet(self.rt.network.ports.unpublish, self.spec.id)
            quiet(self.rt.network.disconnect_all, self.spec.id)
        if self.cgroup is not None and self.driver is not None:
            quiet(self.driver.remove, self.cgroup)


def _valid_fd(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def start(rt: "Runtime", info: "ContainerInfo", attach_stdio: bool = False) -> "ContainerInfo":
    p = rt.paths(info.id)
    with st.Lock(p.state):
        current = rt._info(info.spec)
        if current.status in ("running", "paused"):
            return current
        starter = _Starter(rt, current, attach_stdio)
        try:
            starter.run()
        except BaseException:
            starter.undo()
            raise
    if starter.sock is not None:  # kept for wait_attached (the exit report)
        _ATTACHED[info.id] = starter.sock
    # read after the lock is released: a container that exits at once has its monitor wait for
    # the lock to record the exit, and every read here would delay that
    return rt._info(info.spec)


_ATTACHED: dict[str, _socket.socket] = {}


def wait_attached(id: str) -> dict | None:
    """For a start with attach_stdio/auto_remove: block until the monitor reports the exit
    ({"exit", "oom", "error"}); tells it we remove the container ourselves."""
    sock = _ATTACHED.get(id)
    if sock is None:
        return None
    sock.settimeout(None)
    data = sock.recv(65536)  # a Ctrl-C here leaves the socket in place for the next wait
    del _ATTACHED[id]
    try:
        if not data:
            return None
        msg = json.loads(data)
        try:
            sock.send(b'{"removing": true}')
        except OSError:
            pass
        return msg
    finally:
        sock.close()
