"""--format for ps / container ls / stats (ui.listformat, ui.stats): json lines, bare templates,
`table TEMPLATE` with docker's headers and alignment, and docker's size spellings in stats."""

import json

import pytest

from composer.errors import TemplateError
from composer.ui import listformat
from composer.ui import stats as ui_stats

ROWS = [{"Name": "web", "State": "running", "ID": "abc"}, {"Name": "database", "State": "exited", "ID": "def"}]


def test_json_lines_and_bare_templates():
    assert [json.loads(x) for x in listformat.render(ROWS, "json", {}).splitlines()] == ROWS
    assert listformat.render(ROWS, "{{.Name}}:{{.State}}", {}) == "web:running\ndatabase:exited\n"


def test_table_template_has_a_header_and_aligned_cells():
    out = listformat.render(ROWS, "table {{.Name}}\\t{{.State}}", {"Name": "NAME", "State": "STATE"})
    assert out == "NAME       STATE\nweb        running\ndatabase   exited\n"


def test_bad_templates_fail_before_anything_runs():
    with pytest.raises(TemplateError):
        listformat.validate("table {{.Name")
    listformat.validate("table")
    listformat.validate("json")
    assert not listformat.custom("table") and not listformat.custom(None) and listformat.custom("json")


@pytest.mark.parametrize("n, binary, decimal", [
    (0, "0B", "0B"), (516, "516B", "516B"), (1166, "1.139KiB", "1.17kB"), (188 * 1024, "188KiB", "193kB"),
    (64 << 20, "64MiB", "67.1MB"), (int(23.54 * (1 << 30)), "23.54GiB", "25.3GB"),
])
def test_docker_size_spellings(n, binary, decimal):
    assert ui_stats.binary_size(n) == binary and ui_stats.human_size(n) == decimal


class Reading:
    id, name, running = "ab" * 32, "proj-web-1", True
    memory, memory_limit, pids = 188 * 1024, 64 << 20, 2
    net_rx, net_tx, block_read, block_write = 1166, 516, 0, 4096
    memory_percent = 100.0 * (188 * 1024) / (64 << 20)


def test_stats_row_and_table():
    row = ui_stats.row(Reading(), 1.234)
    assert row == {"BlockIO": "0B / 4.1kB", "CPUPerc": "1.23%", "Container": "abababababab", "ID": "abababababab",
                   "MemPerc": "0.29%", "MemUsage": "188KiB / 64MiB", "Name": "proj-web-1", "NetIO": "1.17kB / 516B",
                   "PIDs": "2"}
    table = ui_stats.render([row], None).splitlines()
    assert table[0].split()[:5] == ["CONTAINER", "ID", "NAME", "CPU", "%"] and "188KiB / 64MiB" in table[1]
    assert ui_stats.render([row], "table {{.Name}}\\t{{.MemPerc}}") == "NAME         MEM %\nproj-web-1   0.29%\n"
