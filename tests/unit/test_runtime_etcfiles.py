"""hosts / hostname / resolv.conf content, and in-place rewriting (a bind mount pins the inode)."""

from __future__ import annotations

import os

from composer.runtime.fs.rootfs import overlay_options, secure_join
from composer.runtime.monitor.child import resolve_user
from composer.runtime.net import etcfiles


def test_hosts_content():
    text = etcfiles.hosts_content([("10.0.0.3", ("db", "database"))], own=[("10.0.0.2", ["web"])])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "10.0.0.2\tweb" in lines and "10.0.0.3\tdb database" in lines
    assert lines.index("10.0.0.2\tweb") < lines.index("10.0.0.3\tdb database")


def test_resolv_drops_loopback_servers():
    host = "# c\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch example.org\noptions edns0\n"
    out = etcfiles.resolv_content(host)
    assert out == "search example.org\nnameserver 192.0.2.1\noptions edns0\n"
    assert "nameserver 8.8.8.8" in etcfiles.resolv_content("nameserver 127.0.0.1\n")
    assert etcfiles.resolv_content(host, dns=["1.1.1.1"], search=["s"]).startswith("search s\nnameserver 1.1.1.1\n")


def test_write_in_place_keeps_inode(tmp_path):
    p = str(tmp_path / "hosts")
    etcfiles.write_in_place(p, "a long first version\n" * 10)
    ino = os.stat(p).st_ino
    etcfiles.write_in_place(p, "short\n")
    assert os.stat(p).st_ino == ino
    assert open(p).read() == "short\n"


def test_write_all(tmp_path):
    files = etcfiles.write_all(str(tmp_path), hostname="h1", hosts=[("1.2.3.4", ("x",))], host_resolv="/nonexistent")
    assert set(files) == {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
    assert open(files["/etc/hostname"]).read() == "h1\n"


def test_secure_join_never_leaves_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/../../../../etc", root / "escape")
    os.symlink("../../..", root / "etc" / "up")
    assert secure_join(str(root), "/escape/passwd") == str(root / "etc" / "passwd")
    assert secure_join(str(root), "/etc/up/x") == str(root / "x")
    assert secure_join(str(root), "/../../a") == str(root / "a")


def test_overlay_options_relative_lowers():
    base, opts = overlay_options(["/data/layers/aaa", "/data/layers/bbb"], "/c/upper", "/c/work")
    assert base == "/data/layers"
    assert opts == "lowerdir=bbb:aaa,upperdir=/c/upper,workdir=/c/work"


def test_resolve_user(tmp_path):
    pw = tmp_path / "passwd"
    gr = tmp_path / "group"
    pw.write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    gr.write_text("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
    assert resolve_user("", str(pw), str(gr)) == (0, 0, [], "/root")
    assert resolve_user("app", str(pw), str(gr)) == (1000, 1000, [2000], "/home/app")
    assert resolve_user("1000:extra", str(pw), str(gr))[:2] == (1000, 2000)
    assert resolve_user("4321", str(pw), str(gr)) == (4321, 0, [], "/")
    import pytest

    from composer.runtime.fs.rootfs import SetupError

    with pytest.raises(SetupError, match="unable to find user ghost"):
        resolve_user("ghost", str(pw), str(gr))
    with pytest.raises(SetupError, match="unable to find group nogroup"):
        resolve_user("app:nogroup", str(pw), str(gr))


def test_caps_resolve():
    from composer.runtime.security import caps

    mask = caps.resolve()
    assert set(caps.names(mask)) == set(caps.DEFAULT)
    assert "NET_ADMIN" in caps.names(caps.resolve(cap_add=("NET_ADMIN",)))
    assert "CHOWN" not in caps.names(caps.resolve(cap_drop=("CAP_CHOWN",)))
    assert caps.names(caps.resolve(cap_drop=("ALL",), cap_add=("KILL",))) == ["KILL"]
