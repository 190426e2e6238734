"""The VM tier's selection and argument plan (tests/vm/run.py), checked on the host in milliseconds: a test
renamed or moved must not silently drop out of the tier, which only runs in CI and `./dev test-v2`."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_run():
    spec = importlib.util.spec_from_file_location("vm_run", ROOT / "tests" / "vm" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_selected_test_function_exists():
    phases = load_run().selection()
    assert phases["login"] and phases["service"]
    for entry in phases["login"] + phases["service"]:
        path, _, name = entry.removeprefix("--deselect=").partition("::")
        assert (ROOT / path).is_file(), entry
        if name:
            func = name.split("[")[0].split("::")[-1]
            assert re.search(rf"^def {func}\(", (ROOT / path).read_text(), re.M), f"{entry}: no such test"


def test_service_subset_is_also_run_from_the_login_session():
    phases = load_run().selection()
    login_files = {e.partition("::")[0] for e in phases["login"] if not e.startswith("-")}
    assert {e.partition("::")[0] for e in phases["service"]} <= login_files


def test_paths_replace_the_selection_and_options_apply_to_both_phases():
    run = load_run()
    plan = run.plan(["-x", "tests/integration/test_cgroups_host.py::test_pids_limit_stops_forks", "-k", "pids"])
    for phase in ("login", "service"):
        args = plan[phase]
        assert args[-1] == "tests/integration/test_cgroups_host.py::test_pids_limit_stops_forks"
        assert "-x" in args and args[args.index("-k") + 1] == "pids"
        assert f"--junitxml=/mnt/out/{phase}.xml" in args
    default = run.plan([])
    assert "tests/integration/test_cgroups_host.py" in default["login"]
