"""Issue 13's reproductions, one test each: what the reference implementation (docker compose v2) does with
these files, composer now does too. tests/differential/ compares whole outputs; these name the behaviour."""

from __future__ import annotations

import json

import pytest

from composer.cli.main import main
from composer.config import LoadOptions, load_project
from composer.errors import ConfigError
from composer.project.attach import AttachOptions, plan

from .helpers import load_text


def svc(tmp_path, body: str, environ: dict | None = None, name: str = "app"):
    return load_text(tmp_path, "services:\n  app:\n    image: busybox\n" + body, environ).services[name]


# 1. YAML 1.1 scalars read as YAML 1.2 (and Go) read them
def test_unquoted_ports_are_not_base_60(tmp_path):
    s = svc(tmp_path, "    ports:\n      - 22:22\n      - 2222:22\n")
    assert [(p.published, p.target) for p in s.ports] == [("22", 22), ("2222", 22)]


def test_yaml_1_1_scalars(tmp_path):
    s = svc(tmp_path, "    environment:\n      A: on\n      B: yes\n      C: 0755\n      D: 1_000\n      E: 1e3\n"
                      "      F: 1:30\n      G: off\n      H: 0x1F\n      I: True\n")
    assert dict(s.environment) == {"A": "on", "B": "yes", "C": "493", "D": "1000", "E": "1000", "F": "1:30",
                                   "G": "off", "H": "31", "I": "true"}


# 2. a `$` not followed by a name is text
def test_dollar_without_a_name_is_kept(tmp_path):
    s = svc(tmp_path, "    command: sh -c 'echo $(hostname) $1'\n    environment: {PRICE: \"5$\"}\n")
    assert s.command == ("sh", "-c", "echo $(hostname) $1")
    assert dict(s.environment)["PRICE"] == "5$"


# 4. keys carried, reported, never lost; attach: false
def test_spec_keys_are_modelled_and_reported(tmp_path, capsys):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: busybox\n    runtime: runc\n    userns_mode: host\n    cpu_quota: 5000\n"
        "    mem_swappiness: 10\n    annotations: {a: b}\n    mac_address: 02:42:ac:11:65:43\n"
        "    build: {context: ., additional_contexts: {x: ./x}, secrets: [s]}\n"
        "    deploy: {resources: {reservations: {devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]}}}\n"
        "secrets:\n  s: {file: ./s}\n")
    p = load_project(LoadOptions(cwd=str(tmp_path), environ={}))
    s = p.services["app"]
    assert (s.runtime, s.userns_mode, s.cpu_quota, s.mem_swappiness) == ("runc", "host", 5000, 10)
    assert dict(s.annotations) == {"a": "b"} and s.build.additional_contexts["x"] == str(tmp_path / "x")
    assert s.deploy.reservations.devices[0]["driver"] == "nvidia"
    assert main(["-f", str(tmp_path / "compose.yaml"), "config", "--check-support"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for key in ("runtime", "userns_mode", "cpu_quota", "mem_swappiness", "annotations", "mac_address",
                "build.additional_contexts", "build.secrets", "deploy.resources.reservations.devices"):
        assert any(f"service app: key '{key}'" in line for line in lines), key


def test_attach_false_is_not_followed(tmp_path):
    p = load_text(tmp_path, "services:\n  app: {image: busybox}\n  noisy: {image: busybox, attach: false}\n")

    class Info:
        def __init__(self, service):
            self.service = service

        def label(self, key, default=""):
            return self.service

    infos = [Info("app"), Info("noisy")]
    assert plan(p, infos, AttachOptions()).followed == frozenset({"app"})
    assert plan(p, infos, AttachOptions(attach=("noisy",))).followed == frozenset({"noisy"})


# 5. build args without a value come from the shell or .env
def test_build_args_without_value(tmp_path):
    (tmp_path / ".env").write_text("FROM_DOTENV=d\n")
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build:\n      context: .\n"
                                           "      args: [FROM_SHELL, FROM_DOTENV, UNSET]\n")
    b = load_project(LoadOptions(cwd=str(tmp_path), environ={"FROM_SHELL": "s"})).services["app"].build
    assert dict(b.args) == {"FROM_SHELL": "s", "FROM_DOTENV": "d", "UNSET": None}


# 6. include: the included project's .env, and include[].env_file
def test_include_reads_its_own_env(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "compose.yaml").write_text("services:\n  a:\n    image: \"x:${TAG_A}\"\n")
    (tmp_path / "sub" / ".env").write_text("TAG_A=from-sub\n")
    (tmp_path / "b.yaml").write_text("services:\n  b:\n    image: \"y:${TAG_B}\"\n")
    (tmp_path / "b.env").write_text("TAG_B=from-env-file\n")
    p = load_text(tmp_path, "include:\n  - sub/compose.yaml\n  - path: b.yaml\n    env_file: b.env\n"
                            "services:\n  c: {image: z}\n")
    assert p.services["a"].image == "x:from-sub" and p.services["b"].image == "y:from-env-file"


# 7. COMPOSE_PROJECT_NAME is there for interpolation
def test_project_name_variable(tmp_path):
    p = load_text(tmp_path, "name: proj\nservices:\n  app:\n    image: busybox\n    container_name: ${COMPOSE_PROJECT_NAME}-app\n")
    assert p.services["app"].container_name == "proj-app"
    p = load_text(tmp_path, "services:\n  app:\n    image: \"x:${COMPOSE_PROJECT_NAME}\"\n",
                  {"COMPOSE_PROJECT_NAME": "fromenv"})
    assert p.services["app"].image == "x:fromenv"


# 8. the long bind syntax does not create a missing source
def test_long_bind_does_not_create_host_path(tmp_path):
    s = svc(tmp_path, "    volumes:\n      - {type: bind, source: ./a, target: /a}\n      - ./b:/b\n")
    assert [v.create_host_path for v in s.volumes] == [False, True]


# 9. extends of a service with no body: no traceback
def test_extends_an_empty_base(tmp_path):
    (tmp_path / "base.yaml").write_text("services:\n  base:\n")
    s = svc(tmp_path, "    extends: {file: base.yaml, service: base}\n")
    assert s.image == "busybox"


# 10. `config` output loads again with the same meaning
def test_config_output_round_trips_dollars(tmp_path, capsys):
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  app:\n    image: busybox\n    command: sh -c \"echo $$HOSTNAME $$(date) $(id)\"\n")
    for fmt in ("yaml", "json"):
        assert main(["-f", str(f), "config", "--format", fmt]) == 0
        out = capsys.readouterr().out
        again = tmp_path / f"again.{fmt}"
        again.write_text(out)
        first = load_project(LoadOptions(files=(str(f),), environ={}, cwd=str(tmp_path))).services["app"]
        second = load_project(LoadOptions(files=(str(again),), environ={}, cwd=str(tmp_path))).services["app"]
        assert first.command == second.command == ("sh", "-c", "echo $HOSTNAME $(date) $(id)")


# 11. the lesser ones
def test_env_file_format_raw(tmp_path):
    (tmp_path / "raw.env").write_text("A=${NOT} # kept\nB=\"quoted\"\n")
    s = svc(tmp_path, "    env_file: [{path: raw.env, format: raw}]\n", {"NOT": "x"})
    assert dict(s.environment) == {"A": "${NOT} # kept", "B": "\"quoted\""}


def test_mount_targets_compared_normalised_in_merges(tmp_path):
    (tmp_path / "over.yaml").write_text("services:\n  app:\n    volumes: [./b:/data]\n")
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: x\n    volumes: [./a:/data/]\n")
    p = load_project(LoadOptions(files=(str(tmp_path / "compose.yaml"), str(tmp_path / "over.yaml")), environ={},
                                 cwd=str(tmp_path)))
    assert [(v.source, v.target) for v in p.services["app"].volumes] == [(str(tmp_path / "b"), "/data")]


def test_name_is_normalised(tmp_path):
    assert load_text(tmp_path, "name: My_App\nservices:\n  a: {image: x}\n").name == "my_app"


def test_label_without_value_is_empty(tmp_path):
    assert dict(svc(tmp_path, "    labels: [novalue, a=1]\n").labels) == {"a": "1", "novalue": ""}


def test_links_imply_restart(tmp_path):
    p = load_text(tmp_path, "services:\n  db: {image: x}\n  web: {image: x, links: [db]}\n"
                            "  side: {image: x, network_mode: 'service:web'}\n  v: {image: x, volumes_from: [db]}\n")
    assert p.services["web"].depends_on["db"].restart and p.services["side"].depends_on["web"].restart
    assert not p.services["v"].depends_on["db"].restart


def test_selinux_option_kept_on_named_volumes(tmp_path):
    s = load_text(tmp_path, "services:\n  a:\n    image: x\n    volumes: [data:/data:z]\nvolumes:\n  data:\n"
                  ).services["a"]
    assert s.volumes[0].selinux == "z"


def test_duplicate_key_names_both_lines(tmp_path):
    with pytest.raises(ConfigError, match=r"compose.yaml:4:5: duplicate key 'image' \(first at line 3\)"):
        load_text(tmp_path, "services:\n  app:\n    image: a\n    image: b\n")


def test_config_error_exits_1(tmp_path, capsys):
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    imagee: x\n")
    assert main(["-f", str(tmp_path / "compose.yaml"), "config"]) == 1
    assert "unknown key 'imagee'" in capsys.readouterr().err


def test_config_yaml_output_quotes_what_yaml_1_2_reads_as_numbers(tmp_path, capsys):
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  app:\n    image: busybox\n    environment:\n"
                 "      A: \"1e3\"\n      B: \"0o17\"\n      C: \"22:22\"\n      D: \"on\"\n")
    assert main(["-f", str(f), "config"]) == 0
    again = tmp_path / "again.yaml"
    again.write_text(capsys.readouterr().out)
    env = load_project(LoadOptions(files=(str(again),), environ={}, cwd=str(tmp_path))).services["app"].environment
    assert dict(env) == {"A": "1e3", "B": "0o17", "C": "22:22", "D": "on"}
