"""Generated container names: a space as large as docker's, and a clash retried with another name."""

from __future__ import annotations

import re

import pytest

from composer.errors import ConflictError
from composer.runtime.container.containers import NAME_RE
from composer.runtime.spec import ContainerSpec
from composer.service import names


def test_space_as_large_as_dockers():
    assert len(set(names.ADJECTIVES)) >= 100 and len(set(names.SURNAMES)) >= 240
    seen = {names.random_name() for _ in range(2000)}
    assert len(seen) > 1900  # 2000 draws from ~28k names
    assert all(NAME_RE.match(n) and re.fullmatch(r"[a-z]+_[a-z]+", n) for n in seen)


def _spec(name):
    return ContainerSpec(id="0" * 64, name=name, image="i", image_id="sha256:x", layers=("/l",), argv=("true",))


def _taking(taken: set[str]):
    calls = []

    def attempt(spec):
        calls.append(spec.name)
        if spec.name in taken:
            raise ConflictError(f'the container name "/{spec.name}" is already in use by container "abc"')
        taken.add(spec.name)
        return spec.name

    return attempt, calls


def test_a_generated_name_that_clashes_is_retried():
    attempt, calls = _taking({"calm_turing"})
    got = names.with_free_name(_spec("calm_turing"), attempt, generated=True)
    assert calls[0] == "calm_turing" and got == calls[-1] != "calm_turing"


def test_a_chosen_name_that_clashes_is_an_error():
    attempt, calls = _taking({"web"})
    with pytest.raises(ConflictError):
        names.with_free_name(_spec("web"), attempt, generated=False)
    assert calls == ["web"]
