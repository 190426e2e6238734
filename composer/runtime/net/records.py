"""The records of runtime.net.network, as kept in `$STATE/networks/<name>.json`: a network and each
container's endpoint on it. Apart from network.py so that reading a container's endpoints (`ps`,
`inspect`) loads no netlink or IPAM code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NetworkInfo:
    """A network as recorded in the state dir: bridge, subnet, gateway."""

    name: str
    bridge: str
    subnet: str
    gateway: str
    internal: bool = False
    labels: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict:
        return {**self.__dict__, "labels": [list(kv) for kv in self.labels]}

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkInfo":
        return cls(d["name"], d["bridge"], d["subnet"], d["gateway"], bool(d.get("internal")),
                   tuple((k, v) for k, v in d.get("labels", ())))


@dataclass(frozen=True)
class Endpoint:
    """A container's attachment to a network: interface, address, gateway, host veth."""

    network: str
    container_id: str
    interface: str
    ipv4_address: str
    prefixlen: int
    gateway: str
    mac_address: str
    host_veth: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "Endpoint":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})
