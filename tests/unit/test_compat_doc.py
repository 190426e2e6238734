"""docs/compat.md prints the differential tier's normalisation table: the same rules, the same reasons."""

from __future__ import annotations

from pathlib import Path

from tests.differential.rules import RULES

DOC = Path(__file__).resolve().parents[2] / "docs" / "compat.md"


def test_normalisation_table_in_docs_is_the_code_table():
    section = DOC.read_text().split("## Normalisation table", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {line.split("`")[1]: line.split(" | ", 1)[1].rstrip(" |") for line in rows}
    assert list(documented) == [r.id for r in RULES]
    for r in RULES:
        assert documented[r.id] == r.reason.replace("|", "/"), r.id
