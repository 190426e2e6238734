"""The start of one run of a container, for its monitor (runtime.monitor.monitor): the monitor forks C1,
which unshares mnt uts ipc net pid (or setns'es into a kept or given netns), forks PID 1
(child.main) and runs the start handshake, then exits; PID 1 is reparented to the monitor (its
subreaper). C1 exits once the container runs, taking the pages that work touched with it.

The handshake, on the starter's SOCK_SEQPACKET socket (the CLI's Runtime.start; one os.write is one
message, one JSON object each): -> {"pid", "pid_start", "monitor_pid", "monitor_start"}; <- {"go":
true[, "net": [...]]} once cgroup and network are in place (C1 then sets the container's addresses
from inside its netns); -> {"started": true} | {"error", "code"}. On a restart nobody is there: C1
puts PID 1 into the cgroup itself. C1 reports to the monitor over a pipe: "P<pid1>\\n", then S
(started), F<code>\\t<message> (the exec failed) or N (gave up).

Lean as the monitor (imported by the launcher before it forks): C modules only."""

from __future__ import annotations

import os

from composer.runtime import syscalls as sc
from composer.runtime.monitor import child, tty
from composer.runtime.monitor.facts import _join_cgroup, _start_time


def launch(mon, first: bool):
    """The start handshake runs in C1, not here: C1 exits once the container runs, taking the
    pages that work touched with it (measured: ~120 kB less per idle monitor). Returns
    (pid1, pidfd, out_r, err_r, exec failure) or None when nothing runs."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()
    if mon.stdio is not None:
        mon.stdio.close()
    mon.stdio = tty.PidOneStdio(mon.req, mon.attach)
    c1 = os.fork()
    if c1 == 0:
        os.close(rep_r)
        _c1(mon, out_w, err_w, rep_w, first)  # never returns
    for fd in (out_w, err_w, rep_w):
        os.close(fd)
    mon.stdio.parent()
    report = b""
    while True:  # until C1 exits: "P<pid1>\n" then S (started) | F<code>\t<message> | N (gave up)
        chunk = os.read(rep_r, 4096)
        if not chunk:
            break
        report += chunk
    os.close(rep_r)
    os.waitpid(c1, 0)
    head, _, outcome = report.partition(b"\n")
    outcome = outcome.lstrip(b"\n")
    if not head.startswith(b"P") or outcome[:1] not in (b"S", b"F"):
        if first and outcome[:1] != b"N":  # C1 died without a word to the starter
            mon.send(error="container setup failed: the start helper died", code=125)
        os.close(out_r)
        os.close(err_r)
        mon.stdio.close()
        mon.reap(0)
        return None
    mon.pid1 = pid1 = int(head[1:])
    try:
        pidfd = os.pidfd_open(pid1)
    except ProcessLookupError:  # reaped already? we are its only reaper: cannot happen
        pidfd = None
    if mon.netns_fd is None and mon.req.get("restart", {}).get("name", "no") != "no" \
            and mon.req["ns_flags"] & sc.CLONE_NEWNET:
        try:
            mon.netns_fd = os.open(f"/proc/{pid1}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass
    if not first:
        mon.record_start(pid1)
    if mon.prober is not None:
        mon.prober.reset()
    out_r = mon.stdio.started(out_r, mon.ctl)  # a tty: the pty master instead of the pipe
    return pid1, pidfd, out_r, err_r, outcome[1:]


def _c1(mon, out_w: int, err_w: int, rep_w: int, first: bool = True) -> None:
    """C1: unshare, fork PID 1, then the whole handshake with the starter (on a restart, with
    nobody: C1 puts PID 1 into the cgroup itself). Never returns."""
    try:
        flags = mon.req["ns_flags"]
        join = mon.netns_fd
        if join is None and mon.req.get("join_netns"):  # network_mode container:x
            join = os.open(mon.req["join_netns"], os.O_RDONLY | os.O_CLOEXEC)
        if join is not None:
            sc.setns(join, sc.CLONE_NEWNET)
            flags &= ~sc.CLONE_NEWNET
        sc.unshare(flags)
        sync_r, sync_w = os.pipe()
        perr_r, perr_w = os.pipe2(os.O_CLOEXEC)
        pid1 = os.fork()
        if pid1 == 0:
            for fd in (sync_w, perr_r, rep_w):  # else a starter that dies leaves PID 1 waiting forever
                os.close(fd)
            mon.stdio.child(mon.cfg, out_w, err_w)
            child.main(mon.cfg, sync_r, perr_w)
        for fd in (out_w, err_w, sync_r, perr_w):
            os.close(fd)
        os.write(rep_w, b"P%d\n" % pid1)
        if first:
            me = os.getppid()
            mon.send(pid=pid1, pid_start=_start_time(pid1), monitor_pid=me, monitor_start=_start_time(me))
            go = mon.recv()
        else:
            go = {"go": _join_cgroup(mon.req.get("cgroup"), pid1)}
        if not go or not go.get("go"):
            os.close(sync_w)  # PID 1 reads EOF and leaves
            os.write(rep_w, b"N")
            os._exit(0)
        for net in go.get("net") or ():  # we are in the container's netns: its addresses, routes
            try:
                from composer.runtime.net import rtnl  # preloaded by the launcher

                rtnl.configure_inside([net])
            except OSError as e:
                mon.send(error=f"cannot attach container {mon.req['id'][:12]} to network {net['network']}: "
                         f"{e.strerror or e}", code=125)
                os.close(sync_w)
                os.write(rep_w, b"N")
                os._exit(0)
        os.write(sync_w, b"g")
        os.close(sync_w)
        failure = b""
        while True:
            chunk = os.read(perr_r, 4096)
            if not chunk:
                break
            failure += chunk
        if failure:
            code, _, message = failure.decode("utf-8", "replace").partition("\t")
            if first:
                mon.send(error=message, code=int(code))
            os.write(rep_w, b"F" + failure)
        else:
            if first:
                mon.send(started=True)
            os.write(rep_w, b"S")
        os._exit(0)
    except BaseException as e:  # noqa: BLE001
        mon.send(error=f"cannot create the container: {e}", code=125)
        try:
            os.write(rep_w, b"\nN")
        finally:
            os._exit(1)
