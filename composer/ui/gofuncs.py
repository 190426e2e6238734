"""The functions and value printing of composer's Go templates (ui/gotemplate.py): Go's builtins (and,
or, not, len, index, slice, print, printf, println, eq, ne, lt, le, gt, ge, html, js, urlquery) and
docker's (json, join, split, title, lower, upper, pad, truncate), over JSON-shaped values."""

from __future__ import annotations

import json
import re


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


def type_name(value) -> str:
    return {str: "string", int: "int", float: "float64", bool: "bool", list: "[]interface {}"}.get(
        type(value), type(value).__name__)


def truth(value) -> bool:
    """Go's truth: false, 0, nil and empty strings, slices and maps are false."""
    if value is None or value is NO_VALUE:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return bool(value)
    return True


def to_text(value) -> str:
    """fmt's %v of a JSON-shaped value."""
    if value is NO_VALUE or value is None:
        return "<no value>"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(to_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{to_text(k)}:{to_text(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _go_float(f: float) -> str:
    if f == int(f) and abs(f) < 1e21:
        return str(int(f)) if abs(f) < 1e21 and ("e" not in repr(f)) else repr(f)
    text = repr(f)
    if "e" in text:
        mant, exp = text.split("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        return f"{mant}e{sign}{exp.lstrip('+-').rjust(2, '0')}"
    return text


def go_json(value) -> str:
    """encoding/json's Marshal: compact, <>& escaped; keys in the order docker writes them."""
    text = json.dumps(None if value is NO_VALUE else value, separators=(",", ":"), ensure_ascii=False,
                      default=lambda v: None)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _eq(a, *others):
    if not others:
        raise ValueError("missing argument for comparison")
    return any(_cmp_key(a) == _cmp_key(b) for b in others)


def _cmp_key(v):
    if isinstance(v, (dict, list, tuple)):
        raise ValueError("invalid type for comparison")
    return v


def _ordered(op):
    def compare(a, b):
        if isinstance(a, str) != isinstance(b, str) or isinstance(a, (dict, list, tuple, bool)) or \
                a is None or isinstance(b, (dict, list, tuple, bool)) or b is None:
            raise ValueError("incompatible types for comparison")
        return op(a, b)
    return compare


def _index(item, *keys):
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key, NO_VALUE)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or not 0 <= key < len(item):
                raise IndexError(f"index out of range: {key}")
            item = item[key] if not isinstance(item, str) else ord(item[key])
        elif item is None or item is NO_VALUE:
            raise ValueError("index of untyped nil")
        else:
            raise ValueError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item, *bounds):
    if not isinstance(item, (list, tuple, str)):
        raise ValueError(f"can't slice item of type {type_name(item)}")
    if len(bounds) > 2:
        raise ValueError("too many slice indexes")
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise IndexError(f"slice index out of range: [{lo}:{hi}]")
    return item[lo:hi]


def _len(item):
    if not isinstance(item, (list, tuple, dict, str)):
        raise ValueError(f"len of type {type_name(item)}")
    return len(item.encode()) if isinstance(item, str) else len(item)


def _print(*args) -> str:
    # fmt.Sprint: spaces between operands when neither is a string
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += to_text(a)
    return out


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def printf(fmt: str, *args) -> str:
    """fmt.Sprintf for the verbs scripts use: %s %v %d %q %t %x %X %o %f %e %g %c %%."""
    args_ = list(args)
    out, pos = [], 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if not args_:
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args_.pop(0)
        spec = "%" + flags.replace("#", "") + (width or "") + (f".{prec}" if prec else "")
        if verb in "sv":
            text = to_text(value) if not (flags and "+" in flags and verb == "v") else to_text(value)
            out.append((spec + "s") % text)
        elif verb == "q":
            out.append((spec + "s") % json.dumps(to_text(value), ensure_ascii=False))
        elif verb == "t":
            out.append((spec + "s") % to_text(value) if isinstance(value, bool) else f"%!t({to_text(value)})")
        elif verb in "dxXocb" and isinstance(value, int) and not isinstance(value, bool):
            if verb == "c":
                out.append(chr(value))
            elif verb == "b":
                out.append((spec + "s") % format(value, "b"))
            else:
                out.append((spec + verb) % value)
        elif verb in "fFeEgG" and isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((spec + verb) % value)
        elif verb in "xX" and isinstance(value, str):
            out.append((spec + "s") % value.encode().hex() if verb == "x" else value.encode().hex().upper())
        else:
            out.append(f"%!{verb}({type_name(value)}={to_text(value)})")
    out.append(fmt[pos:])
    if args_:
        out.append("%!(EXTRA " + ", ".join(f"{type_name(a)}={to_text(a)}" for a in args_) + ")")
    return "".join(out)


def _join(items, sep: str) -> str:
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"join needs a list, not {type_name(items)}")
    return sep.join(to_text(i) for i in items)


def _pad(s, left: int, right: int) -> str:
    return " " * left + to_text(s) + " " * right


def _truncate(s, n: int) -> str:
    s = to_text(s)
    return s[:n] if len(s) > n else s


def _and(*args):
    if not args:
        raise ValueError("and needs an argument")
    for a in args:
        if not truth(a):
            return a
    return args[-1]


def _or(*args):
    if not args:
        raise ValueError("or needs an argument")
    for a in args:
        if truth(a):
            return a
    return args[-1]


def _html(*args) -> str:
    import html

    return html.escape(_print(*args)).replace("&#x27;", "&#39;")


def _urlquery(*args) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_print(*args))


def _js(*args) -> str:
    text = _print(*args)
    for a, b in (("\\", "\\\\"), ("'", "\\'"), ('"', '\\"'), ("<", "\\u003C"), (">", "\\u003E"),
                 ("&", "\\u0026"), ("=", "\\u003D"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        text = text.replace(a, b)
    return text


FUNCS = {
    "and": _and, "or": _or, "not": lambda a: not truth(a), "len": _len, "index": _index, "slice": _slice,
    "print": _print, "printf": printf, "println": lambda *a: " ".join(to_text(x) for x in a) + "\n",
    "eq": _eq, "ne": lambda a, b: not _eq(a, b),
    "lt": _ordered(lambda a, b: a < b), "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b), "ge": _ordered(lambda a, b: a >= b),
    "html": _html, "js": _js, "urlquery": _urlquery,
    # docker's (cli/templates/templates.go)
    "json": go_json, "join": _join, "split": lambda s, sep: s.split(sep) if sep else list(s),
    "title": lambda s: to_text(s).title(), "lower": lambda s: to_text(s).lower(),
    "upper": lambda s: to_text(s).upper(), "pad": _pad, "truncate": _truncate,
}
