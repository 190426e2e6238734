from composer.config import config_hash

from .helpers import load_text

BASE = """services:
  web:
    image: nginx
    environment: {A: "1", B: "2"}
    ports: ["8080:80"]
    depends_on: [db]
  db: {image: postgres}
"""


def h(tmp_path, text, name="web"):
    return config_hash(load_text(tmp_path, text).services[name])


def test_stable_across_runs_and_layout(tmp_path):
    reordered = """services:
  db:
    image: postgres
  web:
    depends_on:
      - db
    ports:
      - target: 80
        published: "8080"
    environment:
      - B=2
      - A=1
    image: nginx
"""
    assert h(tmp_path, BASE) == h(tmp_path, BASE) == h(tmp_path, reordered)
    assert len(h(tmp_path, BASE)) == 64


def test_excluded_fields(tmp_path):
    base = h(tmp_path, BASE)
    assert h(tmp_path, BASE.replace("    depends_on: [db]\n", "")) == base
    assert h(tmp_path, BASE.replace("image: nginx", "image: nginx\n    scale: 3")) == base
    with_profile = BASE.replace("image: nginx", "image: nginx\n    profiles: [p]")
    assert config_hash(load_text(tmp_path, with_profile, profiles=("p",)).services["web"]) == base
    assert h(tmp_path, BASE.replace("image: nginx", "image: nginx\n    build: ./x")) == base


def test_changes_that_matter(tmp_path):
    base = h(tmp_path, BASE)
    assert h(tmp_path, BASE.replace('A: "1"', 'A: "9"')) != base
    assert h(tmp_path, BASE.replace("8080:80", "8081:80")) != base
    assert h(tmp_path, BASE.replace("image: nginx", "image: nginx:2")) != base


def test_replicas_excluded(tmp_path):
    a = h(tmp_path, BASE.replace("image: nginx", "image: nginx\n    deploy: {replicas: 2}"))
    b = h(tmp_path, BASE.replace("image: nginx", "image: nginx\n    deploy: {replicas: 5}"))
    assert a == b
