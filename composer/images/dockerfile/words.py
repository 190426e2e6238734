"""Dockerfile word processing, as BuildKit's shell lexer does it: quotes, the escape character and
variable substitution (`$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
`${VAR:?message}`, `${VAR?message}`). Only the builder substitutes; RUN/CMD/ENTRYPOINT are left to the
container's shell, as docker does."""

from __future__ import annotations

from typing import Mapping

from composer.errors import ImageError

_NAME_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | set("0123456789")
_SPACE = " \t\r\n"


class Lexer:
    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def word(self, text: str, env: Mapping[str, str]) -> str:
        """One word: quotes removed, escapes applied, variables substituted; never split."""
        _, words = self._process(text, 0, env, split=False, stop=None)
        return words[0] if words else ""

    def words(self, text: str, env: Mapping[str, str]) -> list[str]:
        """Split on unquoted whitespace, including whitespace that an unquoted `$VAR` expands to."""
        return self._process(text, 0, env, split=True, stop=None)[1]

    # ---- the scanner

    def _process(self, text: str, i: int, env: Mapping[str, str], *, split: bool,
                 stop: str | None) -> tuple[int, list[str]]:
        words: list[str] = []
        cur: list[str] = []
        started = False
        n = len(text)
        while i < n:
            ch = text[i]
            if stop is not None and ch == stop:
                break
            if split and ch in _SPACE:
                if started:
                    words.append("".join(cur))
                    cur, started = [], False
                i += 1
                continue
            started = True
            if ch == self.escape:
                if i + 1 < n:
                    cur.append(text[i + 1])
                i += 2
            elif ch == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise ImageError(f"unexpected end of statement while looking for matching single-quote: {text}")
                cur.append(text[i + 1:end])
                i = end + 1
            elif ch == '"':
                i, value = self._double(text, i + 1, env)
                cur.append(value)
            elif ch == "$":
                i, value = self._dollar(text, i + 1, env)
                if not split:
                    cur.append(value)
                    continue
                for c in value:  # an unquoted expansion splits like literal text
                    if c in _SPACE:
                        if cur:
                            words.append("".join(cur))
                            cur = []
                    else:
                        cur.append(c)
                started = bool(cur)
            else:
                cur.append(ch)
                i += 1
        if started or cur:
            words.append("".join(cur))
        return i, words

    def _double(self, text: str, i: int, env: Mapping[str, str]) -> tuple[int, str]:
        out: list[str] = []
        n = len(text)
        while i < n:
            ch = text[i]
            if ch == '"':
                return i + 1, "".join(out)
            if ch == self.escape and i + 1 < n and text[i + 1] in ('"', "$", self.escape):
                out.append(text[i + 1])
                i += 2
            elif ch == "$":
                i, value = self._dollar(text, i + 1, env)
                out.append(value)
            else:
                out.append(ch)
                i += 1
        raise ImageError(f"unexpected end of statement while looking for matching double-quote: {text}")

    def _dollar(self, text: str, i: int, env: Mapping[str, str]) -> tuple[int, str]:
        """i points just after '$'. Returns (next index, substituted value)."""
        n = len(text)
        if i >= n:
            return i, "$"
        if text[i] != "{":
            j = i
            while j < n and text[j] in _NAME_CHARS and (j > i or text[j] in _NAME_START):
                j += 1
            if j == i:
                return i, "$"  # `$` before a non-name character is literal
            return j, env.get(text[i:j], "")
        j = i + 1
        while j < n and text[j] in _NAME_CHARS:
            j += 1
        name = text[i + 1:j]
        if not name or j >= n:
            raise ImageError(f"bad substitution: {text}")
        if text[j] == "}":
            return j + 1, env.get(name, "")
        colon = text[j] == ":"
        op_at = j + 1 if colon else j
        op = text[op_at] if op_at < n else ""
        if op not in ("-", "+", "?"):
            raise ImageError(f"unsupported modifier ({text[j:op_at + 1]}) in substitution: {text}")
        end, parts = self._process(text, op_at + 1, env, split=False, stop="}")
        if end >= n:
            raise ImageError(f"missing '}}' in substitution: {text}")
        word = parts[0] if parts else ""
        is_set = name in env
        value = env.get(name, "")
        present = is_set and (value != "" or not colon)
        if op == "-":
            return end + 1, value if present else word
        if op == "+":
            return end + 1, word if present else ""
        if not present:
            raise ImageError(f"{name}: {word or 'is not allowed to be unset'}")
        return end + 1, value


def split_raw(text: str, escape: str = "\\") -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes (for KEY=VALUE lists, whose parts are
    substituted one by one afterwards)."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == escape and i + 1 < n and quote != "'":
            cur.append(text[i:i + 2])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in ("'", '"'):
            quote = ch
        elif ch in _SPACE:
            if cur:
                words.append("".join(cur))
                cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    if cur:
        words.append("".join(cur))
    return words


def parse_pairs(text: str, env: Mapping[str, str], lexer: Lexer, *, instruction: str,
                legacy: bool) -> list[tuple[str, str]]:
    """ENV/LABEL/ARG-style `K=V K2="v 2"`; with legacy, also `ENV K value with spaces`. Every value
    is substituted with the environment as it was BEFORE the instruction (docker's rule)."""
    words = split_raw(text, lexer.escape)
    if not words:
        raise ImageError(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        if not legacy:
            raise ImageError(f"{instruction} expects KEY=VALUE, got {words[0]!r}")
        key = words[0]
        rest = text.strip()[len(key):].strip()
        if not rest:
            raise ImageError(f"{instruction} {key} needs a value ({instruction} KEY=VALUE or {instruction} KEY VALUE)")
        return [(lexer.word(key, env), lexer.word(rest, env))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ImageError(f"{instruction} expects KEY=VALUE, got {word!r}")
        pairs.append((lexer.word(key, env), lexer.word(value, env)))
    return pairs
