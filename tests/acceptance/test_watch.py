"""`composer watch` and `up --watch` against real containers, as a user runs them: a `watch`
process per stack, edits made on the host the way editors make them, the result read back from
inside the container with `composer exec`. One watch process serves every sync test of a stack
(the tier's time stays modest); each stack ends with `down -v` and the usual leftovers check."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.acceptance.conftest import CLI, Stack, down_all

pytestmark = pytest.mark.root

# PID 1 that leaves on SIGTERM at once (busybox sleep as PID 1 would wait out the grace period),
# and counts its starts in a file of the container's own layer
LOOP = ["sh", "-c", "echo $$(date +%s%N) >> /tmp/starts; trap 'exit 0' TERM; while :; do sleep 0.2; done"]


class Watching:
    """A `composer watch` (or `up --watch`) process and the lines it printed."""

    def __init__(self, stack: Stack, *args: str) -> None:
        self.stack = stack
        self.proc = subprocess.Popen([*CLI, "-p", stack.name, "--ansi", "never", *args], cwd=stack.dir,
                                     env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_line("watching", timeout=60)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, text: str, timeout: float = 10, start: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if text in line:
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r} in:\n" + "\n".join(self.lines))

    def interrupt(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self._reader.join(timeout=5)


def sh(stack: Stack, script: str, service: str = "app") -> str:
    return stack("exec", "-T", service, "sh", "-c", script, check=False).stdout


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"still {last!r} after {timeout} s")


def finish(w: Watching | None, stack: Stack) -> None:
    """The end of every test here: no watch process left, then `down -v` and the leftovers check."""
    try:
        if w is not None and w.proc.poll() is None:
            w.interrupt()
    finally:
        down_all([stack])


def states(stack: Stack) -> list[tuple[str, str]]:
    """(container id, state) of every container of the stack: what a broken save must not change."""
    import json

    rows = [json.loads(line) for line in stack("ps", "-a", "--format", "json").stdout.splitlines() if line.strip()]
    return sorted((r["ID"], r["State"]) for r in rows)


def make_stack(base: Path, composer_root: Path, compose: str, files: dict[str, str]) -> Stack:
    base.mkdir(parents=True)
    (base / "compose.yaml").write_text(compose)
    for rel, text in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text)
    name = f"wat{uuid.uuid4().hex[:6]}"
    state = composer_root / "state" / name
    state.mkdir(parents=True)
    env = dict(os.environ, COMPOSER_STATE_DIR=str(state), COMPOSER_DATA_DIR=str(composer_root / "data"))
    env.pop("COMPOSE_PROJECT_NAME", None)
    return Stack(base, name, env)


# ------------------------------------------------------------------ sync


SYNC_STACK = f"""
services:
  app:
    image: busybox
    command: {LOOP!r}
    develop:
      watch:
        - action: sync
          path: ./src
          target: /app/src
          ignore: [node_modules/, "**/*.pyc"]
          initial_sync: true
        - action: sync+restart
          path: ./conf
          target: /etc/app
        - action: sync+exec
          path: ./static
          target: /srv
          exec: {{command: ["sh", "-c", "echo hooked >> /tmp/hooks"]}}
        - {{action: sync, path: ./linked, target: /linked}}
        - {{action: sync, path: ./shared, target: /shared}}
        - {{action: sync, path: ./missing, target: /missing}}
    volumes: ["./shared:/shared"]
"""


@pytest.fixture(scope="module")
def synced(composer_root, busybox_base, tmp_path_factory):
    base = tmp_path_factory.mktemp("watch") / "proj"
    stack = make_stack(base, composer_root, SYNC_STACK, {
        "src/main.py": "print(1)\n", "src/node_modules/dep/index.js": "x\n", "conf/app.conf": "a=1\n",
        "static/index.html": "<p>1</p>\n", "real/r.txt": "r\n", "shared/s.txt": "s\n"})
    os.symlink("real", base / "linked")  # a rule path that is a symlink is followed
    w = None
    try:
        w = Watching(stack, "watch", "--verbose")
        yield stack, w
    finally:
        finish(w, stack)


def test_initial_sync_copies_what_is_not_ignored(synced):
    stack, w = synced
    assert sh(stack, "cat /app/src/main.py") == "print(1)\n"
    assert sh(stack, "ls /app/src") == "main.py\n"  # node_modules/ stays out


def test_rules_that_cannot_act_say_so_once(synced):
    stack, w = synced
    assert "app rule 6 (sync ./missing" in w.wait_line("does not exist; this rule is skipped")
    assert "app rule 5 (sync ./shared" in w.wait_line("is bind-mounted into the container")
    (stack.dir / "real" / "r.txt").write_text("r2\n")
    eventually(lambda: sh(stack, "cat /linked/r.txt") == "r2\n")
    (stack.dir / "README.md").write_text("docs")
    w.wait_line("ignored: ./README.md matches no watch rule")


def test_in_place_save_keeps_the_inode(synced):
    stack, _ = synced
    inode = sh(stack, "stat -c %i /app/src/main.py")
    with open(stack.dir / "src" / "main.py", "r+") as f:  # as an editor writing in place
        f.write("print(2)\n")
        f.truncate()
    eventually(lambda: sh(stack, "cat /app/src/main.py") == "print(2)\n")
    assert sh(stack, "stat -c %i /app/src/main.py") == inode


def test_save_through_temp_file_and_rename(synced):
    stack, _ = synced
    src = stack.dir / "src"
    (src / "4913").write_text("")  # vim's probe, then its swap file, then write + rename
    (src / ".main.py.swp").write_text("swap")
    (src / "main.py.tmp___jb_tmp___").write_text("print(3)\n")
    os.rename(src / "main.py.tmp___jb_tmp___", src / "main.py")
    (src / "4913").unlink()
    eventually(lambda: sh(stack, "cat /app/src/main.py") == "print(3)\n")
    assert "4913" not in sh(stack, "ls -a /app/src") and ".swp" not in sh(stack, "ls -a /app/src")
    (src / ".main.py.swp").unlink()


def test_delete_new_tree_symlink_and_mode(synced):
    stack, w = synced
    src = stack.dir / "src"
    (src / "gone.txt").write_text("x")
    eventually(lambda: sh(stack, "cat /app/src/gone.txt") == "x")
    (src / "gone.txt").unlink()
    eventually(lambda: "gone.txt" not in sh(stack, "ls /app/src"))

    os.makedirs(src / "pkg" / "sub" / "deep")  # mkdir -p, then files at once
    for rel in ("pkg/a.py", "pkg/sub/b.py", "pkg/sub/deep/c.py"):
        (src / rel).write_text(rel)
    eventually(lambda: sh(stack, "cat /app/src/pkg/sub/deep/c.py") == "pkg/sub/deep/c.py")

    os.symlink("pkg/a.py", src / "link.py")
    eventually(lambda: sh(stack, "readlink /app/src/link.py").strip() == "pkg/a.py")

    (src / "run.sh").write_text("#!/bin/sh\necho ran\n")
    os.chmod(src / "run.sh", 0o755)
    eventually(lambda: sh(stack, "/app/src/run.sh 2>&1") == "ran\n")

    (src / "pkg" / "sub" / "x.pyc").write_text("bytecode")
    (src / "node_modules" / "dep" / "new.js").write_text("y")
    assert "rule's ignore **/*.pyc" in w.wait_line("ignored: ./src/pkg/sub/x.pyc")
    time.sleep(0.3)
    assert "x.pyc" not in sh(stack, "ls /app/src/pkg/sub")
    assert "node_modules" not in sh(stack, "ls /app/src")


def test_a_thousand_files_at_once(synced):
    stack, w = synced
    many = stack.dir / "src" / "many"
    many.mkdir()
    for i in range(1000):
        (many / f"f{i:04}.txt").write_text(str(i))
    eventually(lambda: sh(stack, "ls /app/src/many | wc -l").strip() == "1000", timeout=20)
    assert sh(stack, "cat /app/src/many/f0999.txt") == "999"
    import shutil

    shutil.rmtree(many)
    eventually(lambda: "many" not in sh(stack, "ls /app/src"), timeout=20)


def test_sync_restart_and_sync_exec(synced):
    stack, w = synced
    starts = int(sh(stack, "wc -l < /tmp/starts").strip())
    mark = len(w.lines)
    (stack.dir / "conf" / "app.conf").write_text("a=2\n")
    line = w.wait_line("restarted in", start=mark)
    assert "synced 1 file (./conf → /etc/app)" in line
    eventually(lambda: sh(stack, "cat /etc/app/app.conf") == "a=2\n")
    assert int(sh(stack, "wc -l < /tmp/starts").strip()) == starts + 1

    mark = len(w.lines)
    (stack.dir / "static" / "index.html").write_text("<p>2</p>\n")
    w.wait_line("ran sh in 1 container", start=mark)
    assert sh(stack, "cat /tmp/hooks") == "hooked\n"
    assert sh(stack, "cat /srv/index.html") == "<p>2</p>\n"


def test_deletion_reaches_a_stopped_container(synced):
    stack, w = synced
    (stack.dir / "src" / "stale.py").write_text("old")
    eventually(lambda: sh(stack, "cat /app/src/stale.py") == "old")
    stack("stop", "-t", "1")
    mark = len(w.lines)
    (stack.dir / "src" / "stale.py").unlink()
    w.wait_line("no running container to sync to", start=mark)
    stack("start")
    assert "stale.py" not in sh(stack, "ls /app/src")


def test_ctrl_c_leaves_the_stack_running_and_no_watcher(synced):
    stack, w = synced
    pid = w.proc.pid
    assert w.interrupt() == 0
    assert not os.path.exists(f"/proc/{pid}")
    ps = stack("ps", "--format", "json").stdout
    assert '"running"' in ps or "running" in ps.lower()


# ------------------------------------------------------------------ rebuild, reload


REBUILD_STACK = """
services:
  app:
    build: ./app
    develop:
      watch:
        - action: rebuild
          path: ./app/version.txt
  client:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
    depends_on: [app]
"""


def test_rebuild_recreates_only_its_service(composer_root, busybox_base, tmp_path):
    stack = make_stack(tmp_path / "proj", composer_root, REBUILD_STACK, {
        "app/version.txt": "v1\n",
        "app/Dockerfile": "FROM busybox\nCOPY version.txt /version.txt\n"
                          "CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 0.2; done\"]\n"})
    w = None
    try:
        w = Watching(stack, "watch")
        client = sh(stack, "hostname", "client")
        assert sh(stack, "cat /version.txt") == "v1\n"
        mark = len(w.lines)
        (stack.dir / "app" / "version.txt").write_text("v2\n")
        w.wait_line("rebuilt in", timeout=60, start=mark)
        assert sh(stack, "cat /version.txt") == "v2\n"
        assert sh(stack, "hostname", "client") == client  # not recreated
        assert w.interrupt() == 0
    finally:
        finish(w, stack)


RELOAD_STACK = """
services:
  app:
    image: busybox
    command: ["sh", "-c", "echo ${GREETING:-hi} > /tmp/greeting; trap 'exit 0' TERM; while :; do sleep 0.2; done"]
    develop:
      watch:
        - action: sync
          path: ./src
          target: /src
"""


def test_the_stack_reloads_itself(composer_root, busybox_base, tmp_path):
    stack = make_stack(tmp_path / "proj", composer_root, RELOAD_STACK, {"src/a": "a", ".env": "GREETING=hello\n"})
    compose = stack.dir / "compose.yaml"
    w = None
    try:
        w = Watching(stack, "watch")
        assert sh(stack, "cat /tmp/greeting") == "hello\n"

        mark = len(w.lines)  # a service added
        compose.write_text(RELOAD_STACK + "  extra:\n    image: busybox\n    command: [\"sleep\", \"600\"]\n")
        w.wait_line("stack reloaded", start=mark, timeout=30)
        assert "extra" in stack("ps", "--services").stdout

        mark = len(w.lines)  # .env changed: the command's interpolation changes, app is recreated
        (stack.dir / ".env").write_text("GREETING=bonjour\n")
        w.wait_line("stack reloaded", start=mark, timeout=30)
        eventually(lambda: sh(stack, "cat /tmp/greeting") == "bonjour\n")

        mark = len(w.lines)  # a broken save: the error, with file:line, and the stack as it was
        before = states(stack)
        compose.write_text(RELOAD_STACK + "  extra:\n    image: busybox\n    comand: [\"sleep\"]\n")
        line = w.wait_line("error:", start=mark)
        assert "compose.yaml:" in line and "comand" in line
        assert "keeps running" in line
        time.sleep(0.3)
        assert states(stack) == before

        mark = len(w.lines)  # the next good save: the command changed, extra recreated; sync goes on
        compose.write_text(RELOAD_STACK + "  extra:\n    image: busybox\n    command: [\"sleep\", \"601\"]\n")
        w.wait_line("stack reloaded", start=mark, timeout=30)
        assert "601" in sh(stack, "cat /proc/1/cmdline | tr '\\0' ' '", "extra")
        (stack.dir / "src" / "b").write_text("b")
        eventually(lambda: sh(stack, "cat /src/b") == "b")
        assert w.interrupt() == 0
    finally:
        compose.write_text(RELOAD_STACK + "  extra:\n    image: busybox\n")  # `down` must load it
        finish(w, stack)


def test_up_watch_follows_logs_and_syncs(composer_root, busybox_base, tmp_path):
    stack = make_stack(tmp_path / "proj", composer_root, RELOAD_STACK, {"src/a": "a"})
    w = None
    try:
        w = Watching(stack, "up", "--watch")
        (stack.dir / "src" / "new").write_text("n")
        w.wait_line("synced 1 file (./src → /src)")
        assert sh(stack, "cat /src/new") == "n"
        assert stack("up", "-d", "--watch", check=False).returncode != 0
        mark = len(w.lines)  # a service the reload adds joins the log stream
        (stack.dir / "compose.yaml").write_text(RELOAD_STACK + "  extra:\n    image: busybox\n    command: "
                                                "[\"sh\", \"-c\", \"echo extra says hi; trap 'exit 0' TERM; "
                                                "while :; do sleep 0.2; done\"]\n")
        w.wait_line("stack reloaded", start=mark, timeout=30)
        assert "extra says hi" in w.wait_line("extra says hi", start=mark, timeout=10)
        w.interrupt()
        assert "running" not in stack("ps", "--format", "json").stdout  # up's Ctrl+C stops the stack, extra too
    finally:
        finish(w, stack)
