"""The layering in docs/ARCHITECTURE.md, checked mechanically: imports point one way
(cli -> ui -> project -> service -> config | images -> runtime, and inside runtime container -> monitor ->
net | cgroups | security | fs). The contracts live in pyproject.toml ([tool.importlinter])."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_layers_point_one_way():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_runtime_imports_no_yaml_rich_or_networkx():
    """The runtime is a library another program could use: it must not pull in the layers above."""
    code = (
        "import sys, composer.runtime\n"
        "bad = [m for m in ('yaml', 'rich', 'networkx', 'composer.config', 'composer.cli') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
