"""State on disk and status derivation from facts (pid alive AND same start time)."""

from __future__ import annotations

import os

from composer.runtime.container import state as st
from composer.runtime.syscalls import is_alive, proc_start_time


def fake_alive(table):
    return lambda pid, start: table.get(pid) is not None and (start is None or table[pid] == start)


def test_no_state_is_exited_after_reboot():
    assert st.derive_status({}) == "exited"


def test_created_until_a_pid_is_recorded():
    assert st.derive_status({"created_at": 1.0}) == "created"


def test_running_only_with_matching_start_time():
    s = {"created_at": 1.0, "pid": 4242, "pid_start": 100}
    assert st.derive_status(s, fake_alive({4242: 100})) == "running"
    assert st.derive_status(s, fake_alive({4242: 999})) == "exited"  # pid reused by another process
    assert st.derive_status(s, fake_alive({})) == "exited"


def test_paused_and_exited():
    s = {"pid": 1, "pid_start": 5, "paused": True}
    assert st.derive_status(s, fake_alive({1: 5})) == "paused"
    s = {"pid": 1, "pid_start": 5, "finished_at": 3.0, "exit_code": 0}
    assert st.derive_status(s, fake_alive({})) == "exited"


def test_monitor_alive():
    assert st.monitor_alive({"monitor_pid": 7, "monitor_start": 1}, fake_alive({7: 1}))
    assert not st.monitor_alive({"monitor_pid": 7, "monitor_start": 2}, fake_alive({7: 1}))
    assert not st.monitor_alive({}, fake_alive({7: 1}))


def test_real_process_start_time():
    me = os.getpid()
    start = proc_start_time(me)
    assert start and is_alive(me, start)
    assert not is_alive(me, start + 1)
    assert not is_alive(0, None) and not is_alive(None, None)


def test_atomic_write_read_update_and_lock(tmp_path):
    d = str(tmp_path / "c")
    assert st.read(d) == {}
    with st.Lock(d):
        st.write(d, {"a": 1})
        assert st.update(d, b=2) == {"a": 1, "b": 2}
    assert st.read(d) == {"a": 1, "b": 2}
    assert sorted(os.listdir(d)) == ["lock", "state.json"]  # no temp file left


def test_lock_without_create_on_removed_dir(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError):
        with st.Lock(str(tmp_path / "gone"), create=False):
            pass
