"""Every bad input: one ConfigError with file:line:column, service and key; never a traceback."""

import pytest

from composer.errors import ConfigError

from .helpers import load_text

CASES = [
    ("services:\n  web:\n    image: x\n    portz: []\n", "compose.yaml:4:5", ["unknown key 'portz'", "did you mean 'ports'"]),
    ("services:\n  web:\n    image: x\n    ports: ['80:99999']\n", "compose.yaml:4:13", ["out of range"]),
    ("services:\n  web:\n    build: {context: ., dockerfil: D}\n", "compose.yaml:3:25", ["did you mean 'dockerfile'"]),
    ("services:\n  web:\n    environment: {A: 1}\n", "compose.yaml:2:3", ["neither an image nor a build"]),
    ("services:\n  web:\n    image: x\n    depends_on: [dbb]\n  db: {image: x}\n", "compose.yaml:4:", ["undefined service 'dbb'", "did you mean 'db'"]),
    ("services:\n  web:\n    image: x\n    links: [nope]\n", "compose.yaml:4:", ["undefined service 'nope'"]),
    ("services:\n  web:\n    image: x\n    volumes_from: [nope]\n", "compose.yaml:4:", ["undefined service 'nope'"]),
    ("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n  c: {image: x, depends_on: [a]}\n",
     "compose.yaml:2:", ["dependency cycle: a -> b -> c -> a"]),
    ("services:\n  web:\n    image: x\n    container_name: w\n    scale: 2\n", "compose.yaml:4:5", ["container_name"]),
    ("services:\n  web:\n    image: x\n    volumes: ['data:/data']\n", "compose.yaml:4:15", ["undefined volume 'data'"]),
    ("services:\n  web:\n    image: x\n    networks: [back]\n", "compose.yaml:4:", ["undefined network 'back'"]),
    ("services:\n  web:\n    image: x\n    tty: maybe\n", "compose.yaml:4:5", ["true or false"]),
    ("services:\n  web:\n    image: [x]\n", "compose.yaml:3:5", ["must be a string"]),
    ("services:\n  web:\n    image: x\n  web: {image: y}\n", "compose.yaml:4:3", ["duplicate key"]),
    ("services:\n  web:\n    image: x\n   bad indent: 1\n", "compose.yaml:4:", ["invalid YAML"]),
    ("services:\n  web:\n    image: 'x\n", "compose.yaml:", ["invalid YAML"]),
    ("- a\n- b\n", "compose.yaml:1:1", ["mapping"]),
    ("servics:\n  web: {image: x}\n", "compose.yaml:1:1", ["unknown key 'servics'", "did you mean 'services'"]),
    ("services:\n  web:\n    image: x\n    depends_on:\n      db: {condition: service_happy}\n  db: {image: x}\n",
     "compose.yaml:5:", ["must be one of"]),
    ("services:\n  web:\n    image: x\n    command: echo 'unterminated\n", "compose.yaml:4:5", ["cannot split"]),
    ("a: &a [*a]\n", "compose.yaml:", []),
    ("services:\n  bad name!: {image: x}\n", "compose.yaml:2:3", ["invalid name"]),
]


@pytest.mark.parametrize("text,where,words", CASES)
def test_error(tmp_path, text, where, words):
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text)
    msg = str(e.value)
    assert msg.startswith(where) or where in msg, msg
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg and len(msg) < 300


def test_error_carries_service_and_key(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, "services:\n  web:\n    image: x\n    portz: []\n")
    assert e.value.service == "web" and e.value.key == "portz" and e.value.line == 4 and e.value.column == 5
    assert e.value.exit_code == 1
