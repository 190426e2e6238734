"""`composer convert`, key by key, on the corpus in tests/fixtures/convert: which workload a service
becomes, resources in Kubernetes units, Services with named ports and alias names, secrets each at its
own /run/secrets path, binds as ConfigMaps, claims, probes, init containers per depends_on condition,
security context, labels; what cannot be mapped (one line per service and key, refused with --strict);
the output written all or nothing; --push pinning a built image by digest."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from composer.cli.main import main
from composer.config import LoadOptions, load_project
from composer.convert.convert import ConvertOptions, convert
from composer.errors import ConfigError, UsageError

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "convert"


def conv(name: str, **options):
    project = load_project(LoadOptions(files=(str(CORPUS / name),), environ={"HOME": "/home/u"}))
    result = convert(project, ConvertOptions(**options))
    objects = {(o["kind"], o["metadata"]["name"]): o for o in result.objects}
    return objects, [i.line() for i in result.unmapped]


def container(obj):
    return obj["spec"]["template"]["spec"]["containers"][0]


def test_workload_kinds_replicas_and_resources():
    objs, _ = conv("01-web-db.yaml")
    assert ("Deployment", "web") in objs and ("StatefulSet", "db") in objs  # named volume, one replica
    assert objs[("StatefulSet", "db")]["spec"]["serviceName"] == "db" and ("Service", "db") in objs
    assert objs[("Service", "db")]["spec"]["clusterIP"] == "None"
    objs, _ = conv("02-replicas-resources.yaml")
    api = objs[("Deployment", "api")]
    assert api["spec"]["replicas"] == 3
    assert container(api)["resources"] == {"limits": {"cpu": "500m", "memory": "512Mi"},
                                           "requests": {"cpu": "250m", "memory": "128Mi"}}
    objs, _ = conv("17-statefulset-labels-size.yaml")
    assert container(objs[("StatefulSet", "es")])["resources"] == {"limits": {"cpu": "1500m", "memory": "2Gi"}}
    assert objs[("PersistentVolumeClaim", "convert-esdata")]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    objs, lines = conv("05-daemonset.yaml")
    ds = objs[("DaemonSet", "node-exporter")]
    assert "replicas" not in ds["spec"] and ds["spec"]["template"]["spec"]["hostPID"] is True
    objs, _ = conv("16-scale.yaml")
    assert objs[("Deployment", "worker")]["spec"]["replicas"] == 4  # scale: 4 with a volume: not a StatefulSet
    assert objs[("PersistentVolumeClaim", "convert-cache")]["spec"]["accessModes"] == ["ReadWriteMany"]
    objs, _ = conv("33-global-job-and-replicated-job.yaml")
    assert objs[("Job", "cleanup")]["spec"]["completions"] == 3 and ("Job", "announce") in objs


def test_one_shot_services_are_jobs_and_dependents_wait():
    objs, _ = conv("04-oneshot-job.yaml")
    migrate, seed, web = objs[("Job", "migrate")], objs[("Job", "seed")], objs[("Deployment", "web")]
    assert migrate["spec"]["backoffLimit"] == 0 and migrate["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert seed["spec"]["backoffLimit"] == 4 and seed["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    waits = web["spec"]["template"]["spec"]["initContainers"]
    assert [w["command"][3] for w in waits] == ["job/migrate", "job/seed"]
    assert web["spec"]["template"]["spec"]["serviceAccountName"] == "convert-job-waiter"
    assert objs[("Role", "convert-job-waiter")]["rules"][0]["resources"] == ["jobs"]


def test_waits_for_started_and_healthy_dependencies():
    objs, _ = conv("03-healthchecks.yaml")
    app = objs[("Deployment", "app")]["spec"]["template"]["spec"]
    (wait,) = app["initContainers"]
    assert wait["name"] == "wait-for-redis" and "nslookup redis" in wait["command"][2]  # redis: headless, no ports
    objs, _ = conv("28-queue-workers.yaml")
    producer = objs[("Deployment", "producer")]["spec"]["template"]["spec"]["initContainers"][0]
    assert "until nc -w 2 rabbit 15672 </dev/null" in producer["command"][2]  # healthy, ports: through kube-proxy
    consumer = objs[("Deployment", "consumer")]["spec"]["template"]["spec"]["initContainers"][0]
    assert "nslookup rabbit" in consumer["command"][2]


def test_probes_from_the_healthcheck():
    objs, _ = conv("03-healthchecks.yaml")
    redis = container(objs[("Deployment", "redis")])
    assert redis["readinessProbe"] == redis["livenessProbe"] == {
        "exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 5}
    assert redis["startupProbe"]["periodSeconds"] == 2 and redis["startupProbe"]["failureThreshold"] == 15 + 5
    app = container(objs[("Deployment", "app")])
    assert app["livenessProbe"]["exec"]["command"] == ["sh", "-c", "curl -fsS http://localhost:8000/health || exit 1"]
    assert "startupProbe" not in app
    objs, _ = conv("31-healthcheck-disabled.yaml")
    assert "livenessProbe" not in container(objs[("Deployment", "a")])
    assert "livenessProbe" not in container(objs[("Deployment", "b")])
    c = container(objs[("Deployment", "c")])["livenessProbe"]
    assert (c["periodSeconds"], c["timeoutSeconds"], c["failureThreshold"]) == (2, 1, 1)


def test_services_named_ports_published_and_aliases():
    objs, lines = conv("07-links-aliases.yaml")
    assert objs[("Service", "lb-published")]["spec"]["type"] == "LoadBalancer"
    assert [p["name"] for p in container(objs[("Deployment", "lb")])["ports"]] == ["tcp-80", "tcp-443"]
    for alias in ("backend", "api", "api-v1"):  # link alias and network aliases select app's pods
        assert objs[("Service", alias)]["spec"]["selector"] == objs[("Service", "app")]["spec"]["selector"]
        assert objs[("Service", alias)]["spec"]["ports"][0] == {"name": "tcp-8000", "port": 8000,
                                                                "targetPort": "tcp-8000", "protocol": "TCP"}
    assert ("Service", "cache") in objs and not lines
    objs, lines = conv("14-nodeport-udp.yaml", service_type="NodePort")
    ports = objs[("Service", "dns-published")]["spec"]["ports"]
    assert objs[("Service", "dns-published")]["spec"]["type"] == "NodePort"
    assert [(p["name"], p["port"], p.get("nodePort"), p["protocol"]) for p in ports] == [
        ("udp-53", 30053, 30053, "UDP"), ("tcp-53", 30053, 30053, "TCP"), ("metrics", 9153, None, "TCP"),
        ("tcp-8443", 30443, 30443, "TCP")]
    assert ports[3]["appProtocol"] == "https"
    assert any("9153 is outside the NodePort range" in line for line in lines)
    assert any(line.startswith("service dns: ports[8443].mode: host mode publishes") for line in lines)
    objs, lines = conv("25-multi-network.yaml")
    assert "service back: aliases.backend.service: not a valid Service name (DNS-1035 label): this hostname " \
           "will not resolve" in lines
    assert "service back: networks.private.ipv4_address: pod addresses are the cluster network's" in lines


def test_secrets_and_configs_each_file_its_own_path():
    objs, _ = conv("06-secrets-configs.yaml")
    db = container(objs[("Deployment", "db")])
    assert {(m["mountPath"], m["subPath"]) for m in db["volumeMounts"]} == {
        ("/run/secrets/db_password", "db_password"), ("/run/secrets/api_token", "api_token")}
    secret = objs[("Secret", "secret-db-password")]
    assert base64.b64decode(secret["data"]["db_password"]) == b"s3cret-db-password\n"
    proxy = objs[("Deployment", "proxy")]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in proxy["containers"][0]["volumeMounts"]}
    assert set(mounts) == {"/etc/nginx/conf.d/default.conf", "/inline_conf", "/run/secrets/token"}
    vol = next(v for v in proxy["volumes"] if v["name"] == mounts["/etc/nginx/conf.d/default.conf"]["name"])
    assert vol["configMap"]["items"] == [{"key": "nginx_conf", "path": "nginx_conf", "mode": 0o440}]
    assert objs[("ConfigMap", "config-inline-conf")]["data"] == {"inline_conf": "key=value\n"}
    objs, lines = conv("30-secret-env-and-file.yaml")
    assert base64.b64decode(objs[("Secret", "secret-from-env")]["data"]["from_env"]) == b"/home/u"
    assert "service app: secrets.ext: external: the Secret prod-api-key (key ext) must exist in the cluster" in lines


def test_environment_and_small_binds_become_configmaps(tmp_path):
    objs, _ = conv("11-env-file.yaml")
    assert objs[("ConfigMap", "app-env")]["data"] == {"DATABASE_URL": "postgres://db/app", "EMPTY": "",
                                                      "FEATURE_X": "on", "LOG_LEVEL": "debug"}
    assert container(objs[("Deployment", "app")])["envFrom"] == [{"configMapRef": {"name": "app-env"}}]
    objs, lines = conv("12-bind-files.yaml")
    web = objs[("Deployment", "web")]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in web["containers"][0]["volumeMounts"]}
    assert mounts["/etc/nginx/conf.d/default.conf"]["subPath"] == "nginx.conf"
    assert set(mounts) >= {"/usr/share/nginx/html", "/usr/share/nginx/html/css"}  # one ConfigMap per directory
    script = next(v for v in web["volumes"] if v["name"] == mounts["/docker-entrypoint.d/10-migrate.sh"]["name"])
    assert script["configMap"]["defaultMode"] == 0o755  # the executable bit survives
    assert not lines
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1_100_000)
    (tmp_path / "compose.yaml").write_text(f"services:\n  a:\n    image: x\n    volumes: ['{big}:/big', "
                                           "'./missing:/m', './rw.txt:/rw.txt']\n")
    (tmp_path / "rw.txt").write_text("rw\n")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "my file.txt").write_text("spaces\n")
    (tmp_path / "odd" / "my file.txt").chmod(0o644)
    (tmp_path / "empty").mkdir()
    (tmp_path / "odd.yaml").write_text("services:\n  b:\n    image: x\n    volumes: ['./odd:/odd:ro', './empty:/e:ro']\n")
    objs = convert(load_project(LoadOptions(files=(str(tmp_path / "odd.yaml"),), environ={}))).objects
    (dep,) = [o for o in objs if o["kind"] == "Deployment"]
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert vols["b-odd"]["configMap"]["items"] == [{"key": "my_file.txt", "path": "my file.txt", "mode": 0o644}]
    assert vols["b-e"] == {"name": "b-e", "emptyDir": {}}
    project = load_project(LoadOptions(files=(str(tmp_path / "compose.yaml"),), environ={}))
    lines = [i.line() for i in convert(project).unmapped]
    assert any(line.startswith("service a: volumes[/big]: bind source") and "more than a ConfigMap" in line
               for line in lines)
    assert any(line.startswith("service a: volumes[/m]: bind source") for line in lines)
    assert "service a: volumes[/rw.txt]: a writable bind mount becomes a read-only ConfigMap" in lines


def test_shared_volume_is_one_readwritemany_claim():
    objs, lines = conv("13-shared-volume.yaml")
    claim = objs[("PersistentVolumeClaim", "convert-shared")]["spec"]
    assert claim == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "5Gi"}},
                     "storageClassName": "nfs-client"}
    assert lines == ["service reader: volumes.shared: used by reader, writer: one claim, ReadWriteMany (the "
                     "cluster's storage class must offer it)"]


def test_security_labels_entrypoint_command():
    objs, lines = conv("08-security.yaml", k8s_version="1.29")
    sec = container(objs[("Deployment", "hardened")])["securityContext"]
    assert sec["runAsUser"] == 1000 and sec["capabilities"] == {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}
    assert sec["readOnlyRootFilesystem"] and sec["allowPrivilegeEscalation"] is False
    assert "appArmorProfile" not in sec  # before 1.30: the annotation
    template = objs[("Deployment", "hardened")]["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "container.apparmor.security.beta.kubernetes.io/hardened": "localhost/my-profile"}
    assert template["spec"]["securityContext"]["sysctls"] == [{"name": "net.core.somaxconn", "value": "1024"}]
    assert container(objs[("Deployment", "root")])["securityContext"] == {"runAsUser": 0, "privileged": True}
    objs, _ = conv("09-labels-annotations.yaml")
    web = objs[("Deployment", "web")]
    meta = web["spec"]["template"]["metadata"]
    assert meta["labels"]["com.example.team"] == "web"
    assert meta["annotations"]["com.example.description"] == "The public web front end, with spaces"
    assert meta["annotations"]["prometheus.io/scrape"] == "true"
    assert web["metadata"]["labels"]["com.example.tier"] == "frontend"
    objs, _ = conv("10-entrypoint-command.yaml")
    c = container(objs[("Deployment", "worker")])
    assert (c["command"], c["args"], c["workingDir"]) == (["python", "-u"], ["worker.py", "--queue", "default"],
                                                          "/srv/app")
    assert objs[("Deployment", "worker")]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 45


def test_every_unmappable_key_is_one_line():
    _, lines = conv("24-unsupported-keys.yaml")
    keys = {line.split(": ")[0] + ": " + line.split(": ")[1] for line in lines}
    assert keys == {f"service legacy: {k}" for k in (
        "container_name", "init", "devices", "volumes_from", "logging", "stop_signal", "cpu_shares",
        "oom_score_adj", "network_mode", "volumes[/var/run/docker.sock]")}
    _, lines = conv("23-build.yaml")
    assert any(line.startswith("service worker: build: a cluster pulls images: push the built image") for line in lines)
    with pytest.raises(UsageError):
        conv("01-web-db.yaml", k8s_version="1.2")
    with pytest.raises(UsageError, match="no such service"):
        conv("01-web-db.yaml", services=("nope",))
    objs, _ = conv("01-web-db.yaml", services=("web",))
    assert ("StatefulSet", "db") in objs  # a dependency comes along


def test_names_are_made_valid_and_collisions_refused(tmp_path):
    objs, _ = conv("29-weird-names.yaml")
    assert ("Deployment", "my-service-v2") in objs and ("Deployment", "s-2nd-worker") in objs
    (tmp_path / "compose.yaml").write_text("services:\n  a_b: {image: x}\n  a.b: {image: x}\n")
    with pytest.raises(ConfigError, match="both become 'a-b'"):
        convert(load_project(LoadOptions(files=(str(tmp_path / "compose.yaml"),), environ={})))


def test_cli_stream_dir_strict_and_all_or_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n    init: true\n"
                                           "    ports: ['8080:80']\n")
    assert main(["convert"]) == 0
    out, err = capsys.readouterr()
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert [d["kind"] for d in docs] == ["Service", "Service", "Deployment"]
    assert err == ("composer: warning: service web: init: a pod runs no init process for its container (use an "
                   "image with tini, or shareProcessNamespace)\n")
    assert main(["convert", "--strict", "-o", "k8s"]) == 1
    assert "1 key(s) have no Kubernetes equivalent (--strict)" in capsys.readouterr().err
    assert not (tmp_path / "k8s").exists() and not list(tmp_path.glob(".convert-*"))
    assert main(["convert", "-q", "-o", "k8s", "--namespace", "shop"]) == 0
    files = sorted(p.name for p in (tmp_path / "k8s").iterdir())
    assert files == ["kustomization.yaml", "shop-namespace.yaml", "web-deployment.yaml", "web-published-service.yaml",
                     "web-service.yaml"]
    kust = yaml.safe_load((tmp_path / "k8s/kustomization.yaml").read_text())
    assert kust["namespace"] == "shop" and sorted(kust["resources"]) == files[1:]
    (tmp_path / "compose.yaml").write_text("services:\n  api:\n    image: nginx\n")
    assert main(["convert", "-q", "-o", "k8s"]) == 0  # an earlier conversion is replaced whole
    assert sorted(p.name for p in (tmp_path / "k8s").iterdir()) == ["api-deployment.yaml", "kustomization.yaml"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["convert", "-o", "other"]) == 1
    assert "holds no earlier conversion" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]
    assert not list(tmp_path.glob(".convert-*"))


def test_cli_push_pins_built_images_by_digest(tmp_path, monkeypatch, capsys):
    from composer.images.archive import load_archive
    from composer.images.store import ImageStore
    from tests import imagekit as kit
    from tests.fakeregistry import FakeRegistry

    monkeypatch.setenv("COMPOSER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text("name: shop\nservices:\n  app:\n    build: .\n  db:\n    image: postgres\n")
    img = kit.image([kit.layer({"app/x": b"1"})])
    (tmp_path / "img.tar").write_bytes(kit.docker_archive([(img, ["shop-app:latest"])]))
    load_archive(ImageStore(tmp_path / "data"), tmp_path / "img.tar")
    reg = FakeRegistry()
    try:
        assert main(["convert", "-q", "--strict", "--push", reg.domain]) == 0
        docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(capsys.readouterr().out) if d}
        image = container(docs["app"])["image"]
        repo, digest = image.split("@")
        assert repo == f"{reg.domain}/library/shop-app" and reg.manifests[("library/shop-app", digest)]
        assert container(docs["db"])["image"] == "postgres"
    finally:
        reg.close()
