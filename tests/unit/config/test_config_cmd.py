"""`composer config` through the CLI entry point (in-process: fast)."""

import json

import yaml

from composer.cli.main import main

STACK = """name: demo
services:
  web:
    image: nginx
    ports: ["127.0.0.1:8080:80"]
    depends_on: [db]
  db:
    image: postgres
    volumes: ["data:/var/lib/postgresql/data"]
  dbg:
    image: busybox
    profiles: [debug]
volumes:
  data: {}
"""


def run(tmp_path, capsys, *args):
    f = tmp_path / "compose.yaml"
    if not f.exists():
        f.write_text(STACK)
    rc = main(["-f", str(f), "config", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_yaml_output_is_canonical(tmp_path, capsys):
    rc, out, _ = run(tmp_path, capsys)
    assert rc == 0
    doc = yaml.safe_load(out)
    assert list(doc) == ["name", "services", "networks", "volumes"]
    assert list(doc["services"]) == ["db", "web"]
    assert doc["services"]["web"]["ports"] == [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 80,
                                                "published": "8080", "protocol": "tcp"}]
    assert doc["services"]["web"]["depends_on"] == {"db": {"condition": "service_started", "required": True}}
    assert doc["networks"] == {"default": {"name": "demo_default"}}
    assert doc["volumes"] == {"data": {"name": "demo_data"}}


def test_json_equals_yaml(tmp_path, capsys):
    _, y, _ = run(tmp_path, capsys)
    _, j, _ = run(tmp_path, capsys, "--format", "json")
    assert yaml.safe_load(y) == json.loads(j)


def test_listings(tmp_path, capsys):
    assert run(tmp_path, capsys, "--services")[1] == "db\nweb\n"
    assert run(tmp_path, capsys, "--volumes")[1] == "data\n"
    assert run(tmp_path, capsys, "--networks")[1] == "default\n"
    assert run(tmp_path, capsys, "--images")[1] == "postgres\nnginx\n"
    assert run(tmp_path, capsys, "--profiles")[1] == "debug\n"
    assert run(tmp_path, capsys, "-q")[1] == ""


def test_hash(tmp_path, capsys):
    out = run(tmp_path, capsys, "--hash", "*")[1].splitlines()
    assert [line.split()[0] for line in out] == ["db", "web"] and all(len(line.split()[1]) == 64 for line in out)
    assert run(tmp_path, capsys, "--hash", "nope")[0] == 1


def test_output_file(tmp_path, capsys):
    target = tmp_path / "out.yaml"
    rc, out, _ = run(tmp_path, capsys, "-o", str(target))
    assert rc == 0 and out == "" and yaml.safe_load(target.read_text())["name"] == "demo"


def test_no_normalize_and_no_interpolate(tmp_path, capsys):
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: ${IMG:-busybox}\n    ports: ['80']\n")
    doc = yaml.safe_load(run(tmp_path, capsys, "--no-normalize")[1])
    assert doc["services"]["a"]["ports"] == ["80"] and doc["services"]["a"]["image"] == "busybox"
    doc = yaml.safe_load(run(tmp_path, capsys, "--no-interpolate")[1])
    assert doc["services"]["a"]["image"] == "${IMG:-busybox}"


def test_environment_listing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZZ_TEST_VAR", "1")
    out = run(tmp_path, capsys, "--environment")[1]
    assert any(line.split() == ["ZZ_TEST_VAR", "shell"] for line in out.splitlines())


def test_error_exit_code_and_message(tmp_path, capsys):
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: x\n    portz: []\n")
    rc, out, err = run(tmp_path, capsys)
    assert rc == 1 and out == ""
    assert err.startswith("composer: ") and "compose.yaml:4:5" in err and "did you mean 'ports'" in err
    assert "Traceback" not in err


def test_yaml_emitter_round_trips_awkward_strings(tmp_path, capsys):
    from composer.cli.config_cmd import dump_yaml
    doc = {"name": "x", "services": {"a": {"labels": {k: k for k in
           ["yes", "no", "on", "1", "1.5", "0x1f", "null", "~", "", "-", "a: b", "#c", "x #y", "'q'", '"d"',
            "multi\nline", "12:30", "true", "@at", "*star", "&amp", "!bang", "%p", "[l]", "{m}", "é", " lead"]},
           "n": [1, 2.5, True, None, [], {}, [[1]]]}}}
    assert yaml.safe_load(dump_yaml(doc)) == doc
