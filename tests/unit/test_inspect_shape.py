"""`container inspect` prints docker's ContainerJSON shape (moby api/types/container), filled from
composer's spec and state: the keys and types scripts read, and -f templates over them."""

import json

from composer.runtime.container.containers import ContainerInfo
from composer.runtime.net.records import Endpoint, NetworkInfo
from composer.runtime.spec import (ContainerSpec, Healthcheck, Mount, NetworkAttachment, PortMapping, Resources,
                                   RestartPolicy)
from composer.ui import inspect as shape

ID = "ab" * 32
SPEC = ContainerSpec(
    id=ID, name="proj-web-1", image="busybox:local", image_id="sha256:" + "cd" * 32, layers=("/l/1", "/l/2"),
    argv=("httpd", "-f", "-p", "80"), env=(("A", "1"),), cwd="/srv", user="1000", hostname="web",
    mounts=(Mount("/data", source="/var/lib/composer/volumes/proj_data/_data"),
            Mount("/conf", source="/etc/app", read_only=True), Mount("/run/x", type="tmpfs")),
    resources=Resources(memory=64 << 20, cpus=0.5, pids=50),
    networks=(NetworkAttachment("proj_default", aliases=("web",)),),
    ports=(PortMapping(80, 8080, "127.0.0.1"),), labels=(("z", "1"), ("com.example", "x"), ("composer.service", "web")),
    cap_add=("NET_ADMIN",), restart=RestartPolicy("on-failure", 3),
    healthcheck=Healthcheck(("sh", "-c", "true"), interval=2.0),
)
INFO = ContainerInfo(
    id=ID, name="proj-web-1", spec=SPEC, status="running", pid=4242, created_at=1700000000.5,
    started_at=1700000001.25, endpoints=(Endpoint("proj_default", ID, "eth0", "10.89.3.2", 24, "10.89.3.1",
                                                  "02:42:0a:59:03:02", "cmpv0"),),
    ports=(PortMapping(80, 8080, "127.0.0.1"),), health="healthy",
    health_log=({"Start": "s", "End": "e", "ExitCode": 1, "Output": ""},
                {"Start": "s", "End": "e", "ExitCode": 0, "Output": "ok\n"}),
)


def build():
    return shape.container(INFO, volumes_root="/var/lib/composer/volumes", files={"log": "/x/container.log"})


def test_top_level_keys_and_state():
    d = build()
    for key in ("Id", "Created", "Path", "Args", "State", "Image", "Name", "RestartCount", "HostConfig", "Mounts",
                "Config", "NetworkSettings", "LogPath", "GraphDriver"):
        assert key in d
    assert d["Id"] == ID and d["Name"] == "/proj-web-1"
    assert d["Path"] == "httpd" and d["Args"] == ["-f", "-p", "80"]
    assert d["Created"] == "2023-11-14T22:13:20.5Z" and d["State"]["StartedAt"] == "2023-11-14T22:13:21.25Z"
    st = d["State"]
    assert (st["Status"], st["Running"], st["Paused"], st["Pid"], st["ExitCode"], st["OOMKilled"], st["Dead"]) == \
        ("running", True, False, 4242, 0, False, False)
    assert st["FinishedAt"] == "0001-01-01T00:00:00Z"
    assert st["Health"] == {"Status": "healthy", "FailingStreak": 0, "Log": [dict(e) for e in INFO.health_log]}
    assert d["Image"] == "sha256:" + "cd" * 32 and d["LogPath"] == "/x/container.log"


def test_config_and_host_config():
    d = build()
    c, h = d["Config"], d["HostConfig"]
    assert c["Hostname"] == "web" and c["User"] == "1000" and c["WorkingDir"] == "/srv"
    assert c["Env"] == ["A=1"] and c["Cmd"] == ["httpd", "-f", "-p", "80"] and c["Image"] == "busybox:local"
    assert c["Labels"] == {"com.example": "x", "composer.service": "web", "z": "1"} and c["ExposedPorts"] == {"80/tcp": {}}
    assert c["StopSignal"] == "SIGTERM" and c["Healthcheck"]["Test"] == ["CMD", "sh", "-c", "true"]
    assert c["Healthcheck"]["Interval"] == 2_000_000_000
    assert h["Memory"] == 64 << 20 and h["NanoCpus"] == 500_000_000 and h["PidsLimit"] == 50
    assert h["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert h["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert h["NetworkMode"] == "proj_default" and h["CapAdd"] == ["NET_ADMIN"] and h["CapDrop"] is None
    assert h["Binds"] == ["proj_data:/data", "/etc/app:/conf:ro"]
    assert h["Privileged"] is False and h["ReadonlyRootfs"] is False


def test_mounts_and_networks():
    d = build()
    vol, bind, tmpfs = d["Mounts"]
    assert vol == {"Type": "volume", "Name": "proj_data", "Source": "/var/lib/composer/volumes/proj_data/_data",
                   "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}
    assert bind["Type"] == "bind" and bind["Mode"] == "ro" and bind["RW"] is False and bind["Source"] == "/etc/app"
    assert tmpfs["Type"] == "tmpfs" and tmpfs["Destination"] == "/run/x"
    ns = d["NetworkSettings"]
    net = ns["Networks"]["proj_default"]
    assert (net["IPAddress"], net["Gateway"], net["MacAddress"], net["IPPrefixLen"]) == \
        ("10.89.3.2", "10.89.3.1", "02:42:0a:59:03:02", 24)
    assert net["Aliases"] == ["proj-web-1", "web"] and "proj-web-1" in net["DNSNames"]  # as compose lists them
    assert ns["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert ns["SandboxKey"] == "/proc/4242/ns/net" and ns["IPAddress"] == ""  # only the default bridge fills it


def test_stopped_container_and_json_round_trip():
    import dataclasses

    info = dataclasses.replace(INFO, status="exited", pid=None, exit_code=3, finished_at=1700000002.0, health=None)
    d = shape.container(info)
    assert d["State"]["Running"] is False and d["State"]["Pid"] == 0 and d["State"]["ExitCode"] == 3
    assert d["State"]["FinishedAt"] == "2023-11-14T22:13:22Z" and d["NetworkSettings"]["Ports"] == {}
    assert json.loads(shape.render([d], None)) == [d]
    assert json.loads(shape.render([d, d], "json")) == [d, d] and "\n" not in shape.render([d], "json").strip()


def test_format_applies_to_each_object():
    d = build()
    out = shape.render([d, d], '{{.State.Pid}} {{index .Config.Labels "z"}} {{range .Mounts}}{{.Destination}},{{end}}')
    assert out == "4242 1 /data,/conf,/run/x,\n" * 2


def test_network_and_volume_shapes():
    net = NetworkInfo("proj_default", "cmpb1234", "10.89.3.0/24", "10.89.3.1", labels=(("a", "b"),))
    d = shape.network(net, INFO.endpoints, {ID: "proj-web-1"})
    assert d["Name"] == "proj_default" and d["IPAM"]["Config"] == [{"Subnet": "10.89.3.0/24", "Gateway": "10.89.3.1"}]
    assert d["Containers"][ID]["Name"] == "proj-web-1" and d["Containers"][ID]["IPv4Address"] == "10.89.3.2/24"
    assert d["Labels"] == {"a": "b"} and d["Driver"] == "bridge"

    class Vol:
        name, path, labels = "proj_data", "/v/proj_data/_data", ()
    v = shape.volume(Vol(), 1700000000.7)
    assert v == {"CreatedAt": "2023-11-14T22:13:20Z", "Driver": "local", "Labels": None,
                 "Mountpoint": "/v/proj_data/_data", "Name": "proj_data", "Options": None, "Scope": "local"}


# The keys of `docker inspect` (docker 20.10, moby api/types ContainerJSON) of a container run with a
# healthcheck, a published port, a bind and a volume, taken from its output on this host.
DOCKER_KEYS = {
    "": ['AppArmorProfile', 'Args', 'Config', 'Created', 'Driver', 'ExecIDs', 'GraphDriver', 'HostConfig',
         'HostnamePath', 'HostsPath', 'Id', 'Image', 'LogPath', 'MountLabel', 'Mounts', 'Name', 'NetworkSettings',
         'Path', 'Platform', 'ProcessLabel', 'ResolvConfPath', 'RestartCount', 'State'],
    "State": ['Dead', 'Error', 'ExitCode', 'FinishedAt', 'Health', 'OOMKilled', 'Paused', 'Pid', 'Restarting',
              'Running', 'StartedAt', 'Status'],
    "HostConfig": ['AutoRemove', 'Binds', 'BlkioDeviceReadBps', 'BlkioDeviceReadIOps', 'BlkioDeviceWriteBps',
                   'BlkioDeviceWriteIOps', 'BlkioWeight', 'BlkioWeightDevice', 'CapAdd', 'CapDrop', 'Cgroup',
                   'CgroupParent', 'CgroupnsMode', 'ConsoleSize', 'ContainerIDFile', 'CpuCount', 'CpuPercent',
                   'CpuPeriod', 'CpuQuota', 'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'CpuShares', 'CpusetCpus',
                   'CpusetMems', 'DeviceCgroupRules', 'DeviceRequests', 'Devices', 'Dns', 'DnsOptions', 'DnsSearch',
                   'ExtraHosts', 'GroupAdd', 'IOMaximumBandwidth', 'IOMaximumIOps', 'IpcMode', 'Isolation',
                   'KernelMemory', 'KernelMemoryTCP', 'Links', 'LogConfig', 'MaskedPaths', 'Memory',
                   'MemoryReservation', 'MemorySwap', 'MemorySwappiness', 'NanoCpus', 'NetworkMode', 'OomKillDisable',
                   'OomScoreAdj', 'PidMode', 'PidsLimit', 'PortBindings', 'Privileged', 'PublishAllPorts',
                   'ReadonlyPaths', 'ReadonlyRootfs', 'RestartPolicy', 'Runtime', 'SecurityOpt', 'ShmSize', 'UTSMode',
                   'Ulimits', 'UsernsMode', 'VolumeDriver', 'VolumesFrom'],
    "Config": ['AttachStderr', 'AttachStdin', 'AttachStdout', 'Cmd', 'Domainname', 'Entrypoint', 'Env',
               'ExposedPorts', 'Healthcheck', 'Hostname', 'Image', 'Labels', 'OnBuild', 'OpenStdin', 'StdinOnce',
               'Tty', 'User', 'Volumes', 'WorkingDir'],
    "NetworkSettings": ['Bridge', 'EndpointID', 'Gateway', 'GlobalIPv6Address', 'GlobalIPv6PrefixLen',
                        'HairpinMode', 'IPAddress', 'IPPrefixLen', 'IPv6Gateway', 'LinkLocalIPv6Address',
                        'LinkLocalIPv6PrefixLen', 'MacAddress', 'Networks', 'Ports', 'SandboxID', 'SandboxKey',
                        'SecondaryIPAddresses', 'SecondaryIPv6Addresses'],
}
DOCKER_ENDPOINT = ['Aliases', 'DriverOpts', 'EndpointID', 'Gateway', 'GlobalIPv6Address', 'GlobalIPv6PrefixLen',
                   'IPAMConfig', 'IPAddress', 'IPPrefixLen', 'IPv6Gateway', 'Links', 'MacAddress', 'NetworkID']
DOCKER_VOLUME_MOUNT = ['Destination', 'Driver', 'Mode', 'Name', 'Propagation', 'RW', 'Source', 'Type']


def test_every_key_docker_prints_is_there():
    """A template naming any field of docker's output evaluates (missing keys are errors in -f)."""
    d = build()
    for part, keys in DOCKER_KEYS.items():
        have = d[part] if part else d
        assert not set(keys) - set(have), part
    assert not set(DOCKER_ENDPOINT) - set(d["NetworkSettings"]["Networks"]["proj_default"])
    assert set(DOCKER_VOLUME_MOUNT) == set(d["Mounts"][0])


def test_templates_see_the_fields_docker_omits_when_empty():
    import dataclasses

    plain = dataclasses.replace(INFO, spec=dataclasses.replace(SPEC, healthcheck=None, ports=()))
    d = shape.container(plain)
    assert "Health" not in d["State"] and "ExposedPorts" not in d["Config"]  # as docker's JSON
    out = shape.render([d], "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{len .Mounts}}")
    assert out == "none 3\n"
