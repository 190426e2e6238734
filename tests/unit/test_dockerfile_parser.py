"""Dockerfile syntax: a table of Dockerfiles -> instructions (directives, continuations, comments,
flags, exec vs shell form, heredocs), and the errors for bad input."""

from __future__ import annotations

import pytest

from composer.errors import ImageError
from composer.images.dockerfile.dockerfile import parse


def cmds(text: str) -> list[tuple[str, str]]:
    return [(i.cmd, i.args) for i in parse(text).instructions]


@pytest.mark.parametrize("text, expected", [
    ("FROM busybox\nRUN echo hi\n", [("FROM", "busybox"), ("RUN", "echo hi")]),
    ("from busybox\nrun  echo hi  \n", [("FROM", "busybox"), ("RUN", "echo hi")]),
    # continuation: the escape and the newline go, the next line is appended as is
    ("FROM a\nRUN echo a \\\n    && echo b\n", [("FROM", "a"), ("RUN", "echo a     && echo b")]),
    # trailing blanks after the escape still continue
    ("FROM a\nRUN echo a \\  \n  b\n", [("FROM", "a"), ("RUN", "echo a   b")]),
    # comments and blank lines inside a continuation are dropped
    ("FROM a\nRUN one \\\n# note\n\n  two\n", [("FROM", "a"), ("RUN", "one   two")]),
    # comment lines, also indented; a # inside a line is not a comment
    ("# c\n  # indented\nFROM a\nRUN echo a # not a comment\n",
     [("FROM", "a"), ("RUN", "echo a # not a comment")]),
    # the escape directive switches continuations to the backtick; backslash is literal
    ("# escape=`\nFROM a\nRUN dir c:\\ `\n  /b\n", [("FROM", "a"), ("RUN", "dir c:\\   /b")]),
    # a directive after the first instruction is a comment
    ("FROM a\n# escape=`\nRUN x \\\n y\n", [("FROM", "a"), ("RUN", "x  y")]),
    ("\ufeffFROM a\n", [("FROM", "a")]),
    ("FROM a\nCMD\n", [("FROM", "a"), ("CMD", "")]),
])
def test_instructions(text, expected):
    assert cmds(text) == expected


def test_escape_directive_and_syntax():
    df = parse("# syntax=docker/dockerfile:1\n#  ESCAPE = `\nFROM a\n")
    assert df.escape == "`"


def test_line_numbers_and_original():
    df = parse("FROM a\n\nRUN a \\\n  b\nCOPY x y\n")
    assert [i.line for i in df.instructions] == [1, 3, 5]
    assert df.instructions[1].original == "RUN a   b"


@pytest.mark.parametrize("text, json_form", [
    ('CMD ["echo", "hi"]', ("echo", "hi")),
    ('CMD [ "a b" ,"c"]', ("a b", "c")),
    ("CMD echo hi", None),
    ("CMD [echo, hi]", None),  # not JSON: shell form, as docker
    ('CMD ["a", 1]', None),
    ("ENTRYPOINT []", ()),
])
def test_exec_vs_shell_form(text, json_form):
    instr = parse("FROM a\n" + text).instructions[1]
    assert instr.json == json_form


def test_flags():
    instr = parse("FROM a\nCOPY --from=build --chown=1:2 --link src /dst\n").instructions[1]
    assert instr.flags == (("from", "build"), ("chown", "1:2"), ("link", "true"))
    assert instr.args == "src /dst"
    assert instr.flag("from") == "build" and instr.flag("chmod") is None
    with pytest.raises(ImageError, match="unknown flag for COPY: --link"):
        instr.check_flags(("from", "chown"))
    # only instructions that take flags have them split off
    assert parse("FROM a\nENV --x=1\n").instructions[1].args == "--x=1"
    assert parse("FROM --platform=linux/amd64 a AS b\n").instructions[0].flags == (("platform", "linux/amd64"),)


def test_heredocs():
    df = parse("FROM a\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<-'END' /x\n\tkeep $HOME\n\tEND\nRUN true\n")
    run, copy, last = df.instructions[1:]
    assert run.heredocs[0].name == "EOF" and run.heredocs[0].content == "echo one\necho two\n"
    assert run.heredocs[0].expand
    assert copy.heredocs[0].content == "keep $HOME\n" and not copy.heredocs[0].expand
    assert last.args == "true"


@pytest.mark.parametrize("text, message", [
    ("FROM a\nFROBNICATE x\n", "line 2: unknown instruction: FROBNICATE"),
    ("# escape=x\nFROM a\n", "invalid escape token"),
    ("# escape=`\n# escape=\\\nFROM a\n", "only one escape parser directive"),
    ("FROM a\nRUN <<EOF\necho\n", "unterminated heredoc"),
])
def test_errors(text, message):
    with pytest.raises(ImageError, match=message):
        parse(text)
