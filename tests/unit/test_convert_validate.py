"""Every manifest `composer convert` makes for the examples, the test stacks and the corpus in
tests/fixtures/convert (34 varied stack files) is valid: kubernetes-validate in strict mode (unknown
fields refused) against two Kubernetes versions, either side of 1.30 where the output differs (AppArmor
as a field or an annotation), plus composer/convert/checks.py: what no schema sees (DNS names, selectors
matching their templates, Service target ports declared, every ConfigMap/Secret/claim referenced made)."""

from __future__ import annotations

from pathlib import Path

import pytest
import kubernetes_validate

from composer.config import LoadOptions, load_project
from composer.convert import checks, output
from composer.convert.convert import ConvertOptions, convert

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("1.28", "1.33")
CORPUS = sorted((ROOT / "tests/fixtures/convert").glob("*.yaml"))
STACKS = [
    *(ROOT / "examples").glob("*/compose.yaml"),
    *(ROOT / "tests/acceptance/stacks").glob("*/compose.yaml"),
    *[d for d in (ROOT / "tests/fixtures/config").iterdir() if d.is_dir()],
    *[f for f in (ROOT / "tests/fixtures/config/diff").glob("*.yaml") if f.name != "merge-over.yaml"],
    (ROOT / "tests/fixtures/config/diff/merge-base.yaml", ROOT / "tests/fixtures/config/diff/merge-over.yaml"),
]
CASES = [*STACKS, *CORPUS]


def load(path: Path | tuple[Path, ...]):
    if isinstance(path, tuple):
        opts = LoadOptions(files=tuple(map(str, path)), environ={})
    elif path.is_dir():
        opts = LoadOptions(project_directory=str(path), environ={"PWD": str(path)})
    else:
        opts = LoadOptions(files=(str(path),), environ={"HOME": "/home/u"})
    return load_project(opts)


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 30 and len(STACKS) >= 12


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", CASES, ids=lambda p: "+".join(str(f.relative_to(ROOT)) for f in
                                                                   (p if isinstance(p, tuple) else (p,))))
def test_manifests_validate(path, version, tmp_path):
    project = load(path)
    result = convert(project, ConvertOptions(k8s_version=version, namespace="demo" if "34-" in str(path) else None))
    assert result.objects
    for obj in result.objects:
        kubernetes_validate.validate(obj, version, strict=True)
    assert checks.check(result.objects, result.external) == []
    names = output.write_dir(result.objects, tmp_path / "out", None)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names)
    assert not any("&id0" in (tmp_path / "out" / n).read_text() for n in names)  # no YAML aliases


def test_the_checks_catch_what_they_claim_to():
    """checks.check on deliberately broken copies of a good conversion: each fault is found."""
    import copy

    result = convert(load(ROOT / "tests/fixtures/convert/34-full-app.yaml"))
    good = list(result.objects)
    assert checks.check(good, result.external) == []

    def broken(kind: str, name: str, change) -> list[str]:
        objs = copy.deepcopy(good)
        change(next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name))
        return checks.check(objs, result.external)

    pod = lambda o: o["spec"]["template"]["spec"]  # noqa: E731
    assert "Deployment/api: selector" in broken("Deployment", "api",
                                                lambda o: o["spec"]["selector"]["matchLabels"].update(x="y"))[0]
    assert "targets 'tcp-8080', which Deployment/api does not declare" in " ".join(
        broken("Deployment", "api", lambda o: pod(o)["containers"][0].pop("ports")))
    assert "ConfigMap 'api-env' does not exist" in " ".join(
        broken("ConfigMap", "api-env", lambda o: o["metadata"].update(name="api-environment")))
    assert "Secret 'secret-pg-password' does not exist" in " ".join(
        broken("Secret", "secret-pg-password", lambda o: o["metadata"].update(name="other")))
    assert "PersistentVolumeClaim 'shop-pg' does not exist" in " ".join(
        broken("PersistentVolumeClaim", "shop-pg", lambda o: o["metadata"].update(name="shop-pg2")))
    assert "Service 'postgres' does not exist" in " ".join(
        broken("Service", "postgres", lambda o: o["metadata"].update(name="postgres-db")))
    assert "Job 'migrate' does not exist" in " ".join(
        broken("Job", "migrate", lambda o: o["metadata"].update(name="migrations")))
    assert "Service/Front_End: invalid name" in broken("Service", "frontend",
                                                      lambda o: o["metadata"].update(name="Front_End"))
    assert "matches no workload's pods" in " ".join(
        broken("Service", "redis", lambda o: o["spec"]["selector"].update(x="y")))
