"""composer.startup's regex cache: a pattern built from the cached program behaves exactly as one
compiled the usual way, the file round-trips, and a file from another interpreter is ignored."""

from __future__ import annotations

import marshal
import subprocess
import sys

_PROBE = r"""
import re, sys
from composer import startup
startup.REGEX_CACHE = sys.argv[1]
startup.install_regex_cache()
sample = "12-ab x STRASSE straße\n# c\n\tb a" + "é" * 3
out = []
for p, f in [(r"(?P<a>\d+)-(?P<b>[a-z]*)", 0), (r"^\s*#", re.M), (r"straße", re.I), (r"(a)|b", re.X),
             (r"[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD]", 0), (r"\w+", re.A)]:
    c = re.compile(p, f)
    out.append((c.pattern, c.flags, c.groups, dict(c.groupindex), [m.span() for m in c.finditer(sample)],
                c.sub(r"<\g<0>>", sample)))
b = re.compile(rb"[\x80-\xff]+")
out.append((b.pattern, b.flags, [m.span() for m in b.finditer("aé b".encode())]))
print(len(startup._new_regexes), repr(out))
"""


def _run(path, **env):
    import os

    res = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    new, out = res.stdout.split(" ", 1)
    return int(new), out


def test_cached_patterns_match_as_compiled_ones(tmp_path):
    path = tmp_path / "regex.marshal"
    plain = _run(path, COMPOSER_NO_CODE_CACHE="1")
    assert not path.exists() and plain[0] == 0
    first = _run(path)
    assert first[0] >= 7 and path.exists()
    second = _run(path)
    assert second == (0, plain[1]) and first[1] == plain[1]  # all from the file, same behaviour


def test_a_file_of_another_interpreter_or_a_bad_program_is_ignored(tmp_path):
    path = tmp_path / "regex.marshal"
    _run(path)
    data = marshal.loads(path.read_bytes())
    data[""] = ("another python", 1)
    path.write_bytes(marshal.dumps(data))
    assert _run(path)[0] >= 7  # compiled afresh (and the file rewritten for this interpreter)
    data = marshal.loads(path.read_bytes())
    for key in data:
        if key and key[0] == r"\w+":
            flags, code, *rest = marshal.loads(data[key])
            data[key] = marshal.dumps((flags, [255] * len(code), *rest))  # a program _sre refuses
    path.write_bytes(marshal.dumps(data))
    new, out = _run(path)
    assert new == 1 and out == _run(path, COMPOSER_NO_CODE_CACHE="1")[1]
