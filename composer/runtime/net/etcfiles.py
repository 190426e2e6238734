"""The host-side /etc/hosts, /etc/hostname and /etc/resolv.conf a container gets bind-mounted.

A bind mount pins the inode, so a running container only sees changes written IN PLACE (write,
then truncate); a write-temp-then-rename would be invisible to it (host-facts)."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from typing import Iterable

HOSTS_HEADER = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")  # docker's choice when the host only has loopback resolvers


HOST_GATEWAY = "host-gateway"  # docker's extra_hosts word for "the host, as seen from the container"


def hosts_content(entries: Iterable[tuple[str, Iterable[str]]], own: Iterable[tuple[str, Iterable[str]]] = (),
                  gateway: str | None = None) -> str:
    """localhost lines, then the container's own addresses, then extra entries (peers).
    `host-gateway` addresses become `gateway` (the first network's bridge address, as docker's
    bridge gateway), and are left out when the container has no network."""
    lines = [HOSTS_HEADER]
    for address, names in list(own) + list(entries):
        if address == HOST_GATEWAY:
            address = gateway or ""
        names = [n for n in names if n]
        if address and names:
            lines.append(f"{address}\t{' '.join(names)}\n")
    return "".join(lines)


def resolv_content(host_text: str, dns: Iterable[str] = (), search: Iterable[str] = ()) -> str:
    """resolv.conf for a container with its own netns: the spec's servers, else the host's minus
    loopback ones (unreachable from inside), else docker's fallback."""
    servers, searches, options = [], [], []
    for line in host_text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    dns, search = list(dns), list(search)
    if not dns:
        dns = [s for s in servers if not _is_loopback(s)] or list(FALLBACK_DNS)
    out = []
    if search or searches:
        out.append("search " + " ".join(search or searches))
    out.extend(f"nameserver {s}" for s in dns)
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def _is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1, as ipaddress says, without importing it (~1 ms of every start)."""
    import _socket

    address = address.split("%")[0]
    for family, loopback in ((_socket.AF_INET, None), (_socket.AF_INET6, b"\0" * 15 + b"\1")):
        try:
            packed = _socket.inet_pton(family, address)
        except OSError:
            continue
        return packed[0] == 127 if loopback is None else packed == loopback
    return False


def write_in_place(path: str, content: str) -> None:
    """Overwrite keeping the inode (what the container's bind mount points at)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        data = content.encode()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def write_all(dir_: str, *, hostname: str, domainname: str = "", hosts: Iterable = (), own: Iterable = (),
              dns: Iterable[str] = (), dns_search: Iterable[str] = (), host_resolv: str = "/etc/resolv.conf") -> dict[str, str]:
    """Write the three files into dir_; returns {container path: host path} for the bind mounts."""
    os.makedirs(dir_, exist_ok=True)
    try:
        with open(host_resolv) as f:
            host_text = f.read()
    except OSError:
        host_text = ""
    files = {
        "/etc/hostname": hostname + "\n",
        "/etc/hosts": hosts_content(hosts, own),
        "/etc/resolv.conf": resolv_content(host_text, dns, dns_search),
    }
    out = {}
    for target, content in files.items():
        path = os.path.join(dir_, os.path.basename(target))
        write_in_place(path, content)
        out[target] = path
    return out
