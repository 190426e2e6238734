"""Seccomp profiles in docker's JSON format -> a resolved seccomp.Filter for this host -> BPF bytes.

The default is docker's default profile (moby profiles/seccomp/default.json) restated as data: an
allow-list, default EPERM, whose conditional parts are resolved like moby does against the
container's capabilities (a rule `includes` caps only if it keeps all of them, `excludes` if it
keeps none), this arch and kernel. With docker's default capabilities that blocks mount, unshare,
setns, bpf, keyctl, kexec, module loading, reboot, clock setting, clone with namespace flags, ...
and answers clone3 with ENOSYS so that libc falls back to clone.

One deliberate difference: docker also allows the i386 and x32 syscall tables on x86_64 (and arm
on arm64); here only the native table is accepted, other arches' calls kill the process.

Building costs about a millisecond; programs are cached per (profile, capabilities, arch)."""

from __future__ import annotations

import functools
import json
import os

from composer.runtime.security import caps as capmod
from composer.runtime.security import seccomp_bpf as bpf
from composer.runtime.security.seccomp_tables import table

UNCONFINED = "unconfined"
EPERM = 1
GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}  # docker's names in includes/excludes "arches"

_ALLOW = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark
fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid
geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage
getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter
io_uring_register io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset
landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek
lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier memfd_create memfd_secret mincore mkdir
mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open
openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll
ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64
pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir
rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32
setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn
socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range
syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime
utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
"""

# clone flags a container without CAP_SYS_ADMIN may not pass: the CLONE_NEW* namespace bits
_CLONE_NS_MASK = 0x7E020000


def _cap(names: str, *caps: str) -> dict:
    return {"names": names.split(), "action": "SCMP_ACT_ALLOW", "includes": {"caps": list(caps)}}


DEFAULT_PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM,
    "syscalls": [
        {"names": _ALLOW.split(), "action": "SCMP_ACT_ALLOW"},
        {"names": ["process_vm_readv", "process_vm_writev", "ptrace"], "action": "SCMP_ACT_ALLOW",
         "includes": {"minKernel": "4.8"}},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
        *({"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]}
          for v in (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)),
        {"names": ["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
                   "set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["modify_ldt"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32", "x86"]}},
        _cap("open_by_handle_at", "CAP_DAC_READ_SEARCH"),
        _cap("bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr "
             "move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog "
             "umount umount2 unshare", "CAP_SYS_ADMIN"),
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": _CLONE_NS_MASK, "op": "SCMP_CMP_MASKED_EQ"}],
         "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        _cap("reboot", "CAP_SYS_BOOT"),
        _cap("chroot", "CAP_SYS_CHROOT"),
        _cap("delete_module init_module finit_module", "CAP_SYS_MODULE"),
        _cap("acct", "CAP_SYS_PACCT"),
        _cap("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace", "CAP_SYS_PTRACE"),
        _cap("iopl ioperm", "CAP_SYS_RAWIO"),
        _cap("settimeofday stime clock_settime clock_settime64", "CAP_SYS_TIME"),
        _cap("vhangup", "CAP_SYS_TTY_CONFIG"),
        _cap("get_mempolicy mbind set_mempolicy set_mempolicy_home_node", "CAP_SYS_NICE"),
        _cap("syslog", "CAP_SYSLOG"),
        _cap("bpf", "CAP_BPF"),
        _cap("perf_event_open", "CAP_PERFMON"),
    ],
}

_SIMPLE_ACTIONS = {
    "SCMP_ACT_ALLOW": bpf.RET_ALLOW, "SCMP_ACT_KILL": bpf.RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": bpf.RET_KILL_THREAD, "SCMP_ACT_KILL_PROCESS": bpf.RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": bpf.RET_TRAP, "SCMP_ACT_LOG": bpf.RET_LOG,
}


def native_arch() -> str:
    return os.uname().machine


def _kernel() -> tuple[int, ...]:
    parts = []
    for p in os.uname().release.split("-")[0].split(".")[:2]:
        parts.append(int("".join(c for c in p if c.isdigit()) or 0))
    return tuple(parts)


def _action(name: object, errno_ret: object, default_errno: int) -> int:
    if name in _SIMPLE_ACTIONS:
        return _SIMPLE_ACTIONS[name]  # type: ignore[index]
    data = errno_ret if isinstance(errno_ret, int) else None
    if name == "SCMP_ACT_ERRNO":
        return bpf.RET_ERRNO | ((default_errno if data is None else data) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return bpf.RET_TRACE | ((default_errno if data is None else data) & 0xFFFF)
    raise ValueError(f"seccomp action {name!r} is not supported")


def _applies(cond: dict, keep: set[str], arch: str, kernel: tuple[int, ...], include: bool) -> bool:
    """moby's includes/excludes: includes need all caps, the arch and minKernel; excludes any of them."""
    cond = cond or {}
    caps = [c.upper().removeprefix("CAP_") for c in cond.get("caps") or ()]
    arches = cond.get("arches") or ()
    mink = cond.get("minKernel")
    if include:
        if caps and not all(c in keep for c in caps):
            return False
        if arches and GOARCH.get(arch) not in arches:
            return False
        if mink and kernel < tuple(int(x) for x in str(mink).split(".")[:2]):
            return False
        return True
    return not ((caps and any(c in keep for c in caps)) or (arches and GOARCH.get(arch) in arches))


def _args(entry: dict) -> list[tuple[bpf.Arg, ...]]:
    """A rule's args; several on one index become alternative rules (runc's reading), else one AND."""
    args = tuple(bpf.Arg(int(a["index"]), str(a["op"]), int(a.get("value", 0)), int(a.get("valueTwo", 0)))
                 for a in entry.get("args") or ())
    for a in args:
        if a.op not in bpf.OPS:
            raise ValueError(f"unknown seccomp comparison {a.op!r}")
    if len({a.index for a in args}) < len(args):
        return [(a,) for a in args]
    return [args]


def resolve(profile: dict, keep_caps: int, arch: str, kernel: tuple[int, ...] | None = None) -> bpf.Filter:
    """A docker-format profile (parsed JSON) -> the Filter for a container keeping `keep_caps`."""
    if not isinstance(profile, dict) or not isinstance(profile.get("syscalls", []), list):
        raise ValueError("a seccomp profile is a JSON object with a 'syscalls' list")
    kernel = kernel or _kernel()
    keep = {name for name, nr in capmod.NUMBERS.items() if keep_caps >> nr & 1}
    default_errno = int(profile.get("defaultErrnoRet") or EPERM)
    default = _action(profile.get("defaultAction", "SCMP_ACT_ERRNO"), None, default_errno)
    numbers = table(arch)
    rules: dict[int, list[bpf.Rule]] = {}
    for entry in profile.get("syscalls") or ():
        if not isinstance(entry, dict):
            raise ValueError("each seccomp 'syscalls' entry is a JSON object")
        names = list(entry.get("names") or ()) + ([entry["name"]] if entry.get("name") else [])
        if not (_applies(entry.get("includes"), keep, arch, kernel, True)
                and _applies(entry.get("excludes"), keep, arch, kernel, False)):
            continue
        action = _action(entry.get("action"), entry.get("errnoRet"), default_errno)
        alternatives = _args(entry)
        for name in names:
            nr = numbers.get(name)
            if nr is None:
                continue  # not a syscall of this arch (libseccomp skips these too)
            rules.setdefault(nr, []).extend(bpf.Rule(action, a) for a in alternatives)
    return bpf.Filter(arch, default, tuple((nr, tuple(r)) for nr, r in sorted(rules.items())))


@functools.lru_cache(maxsize=32)
def program(profile: str, keep_caps: int, arch: str | None = None) -> bytes | None:
    """BPF bytes for a spec's `seccomp` value ("" default, "unconfined" -> None, else profile JSON)."""
    if profile == UNCONFINED:
        return None
    data = DEFAULT_PROFILE if not profile else json.loads(profile)
    return bpf.to_bytes(bpf.assemble(resolve(data, keep_caps, arch or native_arch())))


def for_container(profile: str, cap_add: tuple[str, ...], cap_drop: tuple[str, ...], privileged: bool) -> bytes | None:
    """The program a container gets; None when unconfined (privileged containers are, as docker's)."""
    if privileged or profile == UNCONFINED:
        return None
    return program(profile, capmod.resolve(cap_add, cap_drop, privileged))


def load_option(value: str, base_dir: str = ".") -> str:
    """The value of security_opt seccomp=VALUE -> a spec's `seccomp` field: "unconfined", "" for
    docker's default ("builtin"), or the profile file's JSON, checked by compiling it here.
    Raises ValueError with a one-line reason."""
    if value in (UNCONFINED, "unconfined"):
        return UNCONFINED
    if value in ("", "builtin", "default"):
        return ""
    path = os.path.join(base_dir, os.path.expanduser(value))
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read seccomp profile {value}: {e.strerror}") from None
    except ValueError as e:
        raise ValueError(f"seccomp profile {value} is not valid JSON: {e}") from None
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    try:
        program(text, capmod.resolve())
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"seccomp profile {value}: {e}") from None
    return text
