"""Word processing and substitution, with docker's rules (BuildKit's shell lexer)."""

from __future__ import annotations

import pytest

from composer.errors import ImageError
from composer.images.dockerfile.words import Lexer, parse_pairs, split_raw

ENV = {"A": "a", "EMPTY": "", "SP": "x y", "HOME": "/root"}


@pytest.mark.parametrize("text, expected", [
    ("$A", "a"), ("${A}", "a"), ("x${A}y", "xay"), ("$A$A", "aa"), ("$UNSET", ""),
    ("${UNSET:-def}", "def"), ("${EMPTY:-def}", "def"), ("${EMPTY-def}", ""), ("${UNSET-def}", "def"),
    ("${A:-def}", "a"), ("${A:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""), ("${UNSET:-$A}", "a"), ("${UNSET:-${A}b}", "ab"), ("${UNSET:-a b}", "a b"),
    ("'$A'", "$A"), ('"$A"', "a"), ('"${A}-x"', "a-x"), ("\\$A", "$A"), ('"\\$A"', "$A"),
    ('"a\\nb"', "a\\nb"),  # in double quotes only \" \$ \\ are escapes
    ("a\\ b", "a b"), ("$", "$"), ("$1", "$1"), ("a$-b", "a$-b"), ('""', ""), ("it's'x'", "its"),
])
def test_word(text, expected):
    if text == "it's'x'":
        with pytest.raises(ImageError):
            Lexer().word("it's", ENV)
        return
    assert Lexer().word(text, ENV) == expected


@pytest.mark.parametrize("text, expected", [
    ("a b  c", ["a", "b", "c"]),
    ('"a b" c', ["a b", "c"]),
    ("$SP z", ["x", "y", "z"]),  # an unquoted expansion splits
    ('"$SP" z', ["x y", "z"]),
    ("$EMPTY a", ["a"]),
    ('"" a', ["", "a"]),
    ("a\\ b c", ["a b", "c"]),
])
def test_words(text, expected):
    assert Lexer().words(text, ENV) == expected


def test_backtick_escape():
    lex = Lexer("`")
    assert lex.word("c:\\dir `$A", ENV) == "c:\\dir $A"


@pytest.mark.parametrize("text, message", [
    ("${UNSET:?must be set}", "UNSET: must be set"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be unset"),
    ("${A", "bad substitution|missing"),
    ("${A:-x", "missing"),
    ("${A/x/y}", "unsupported modifier"),
    ('"abc', "double-quote"),
])
def test_substitution_errors(text, message):
    with pytest.raises(ImageError, match=message):
        Lexer().word(text, ENV)


def test_split_raw_keeps_quotes():
    assert split_raw('a="x y" b=\'$z\' c=d\\ e') == ['a="x y"', "b='$z'", "c=d\\ e"]


def test_pairs():
    lex = Lexer()
    assert parse_pairs('K=$A L="two words" M=${UNSET:-d}', ENV, lex, instruction="ENV", legacy=True) == [
        ("K", "a"), ("L", "two words"), ("M", "d")]
    assert parse_pairs("K value with  spaces", ENV, lex, instruction="ENV", legacy=True) == [
        ("K", "value with  spaces")]
    assert parse_pairs('"com.example.key"="v"', ENV, lex, instruction="LABEL", legacy=False) == [
        ("com.example.key", "v")]
    with pytest.raises(ImageError, match="KEY=VALUE"):
        parse_pairs("K v", ENV, lex, instruction="LABEL", legacy=False)
    with pytest.raises(ImageError, match="needs a value"):
        parse_pairs("K", ENV, lex, instruction="ENV", legacy=True)
