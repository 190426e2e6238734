"""composer's Go templates (ui/gotemplate.py) on docker-shaped values: the forms scripts use with
`docker inspect -f`, printed as docker prints them (checked against docker 20.10's output on this host),
and errors that name the position in the template."""

import pytest

from composer.errors import TemplateError
from composer.ui.gotemplate import Template, render

DATA = {
    "Id": "abc123",
    "Name": "/web",
    "Args": ["-p", "80"],
    "State": {"Status": "running", "Pid": 4242, "ExitCode": 0, "Running": True, "Error": "", "Health": None},
    "Config": {"Labels": {"k": "v", "a": "b"}, "Entrypoint": None, "Cmd": ["httpd", "-f"], "Env": ["A=1"]},
    "Mounts": [{"Source": "/srv", "Destination": "/data"}, {"Source": "/tmp", "Destination": "/t"}],
    "HostConfig": {"Memory": 67108864, "NanoCpus": 500000000},
}


@pytest.mark.parametrize("template, expected", [
    ("{{.State.Pid}}", "4242"),
    ("{{.Name}}", "/web"),
    ('{{json .Config}}', '{"Labels":{"k":"v","a":"b"},"Entrypoint":null,"Cmd":["httpd","-f"],"Env":["A=1"]}'),
    ("{{range .Mounts}}{{.Source}} {{end}}", "/srv /tmp "),
    ('{{index .Config.Labels "k"}}', "v"),
    ('{{index .Config.Labels "missing"}}', "<no value>"),
    ("{{.Config.Labels.k}}", "v"),
    ('{{.State.Status | printf "%s"}}', "running"),
    ('{{.State.Pid | printf "%d!"}}', "4242!"),
    ('{{if eq .State.Status "running"}}up{{else}}down{{end}}', "up"),
    ('{{if .State.ExitCode}}failed{{else if .State.Running}}running{{else}}done{{end}}', "running"),
    ('{{join .Args ","}}', "-p,80"),
    ("{{upper .State.Status}} {{lower \"AbC\"}}", "RUNNING abc"),
    ("{{println .Id}}", "abc123\n"),
    ("{{.HostConfig.Memory}}", "67108864"),
    ("{{.Config.Cmd}}", "[httpd -f]"),
    ("{{.Config.Entrypoint}}", "<no value>"),
    ("{{.Config.Labels}}", "map[a:b k:v]"),
    ("{{range $i, $m := .Mounts}}{{$i}}:{{$m.Destination}};{{end}}", "0:/data;1:/t;"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}", "a=b,k=v,"),
    ("{{range .Nothing}}x{{else}}empty{{end}}".replace(".Nothing", ".Config.Env"), "x"),
    ("{{range .Config.Entrypoint}}x{{else}}none{{end}}", "none"),
    ("{{with .State}}{{.Pid}}{{end}}", "4242"),
    ("{{with .State.Error}}err{{else}}ok{{end}}", "ok"),
    ("{{- $n := .Name -}}\n [{{ $n }}] {{/* a comment */}}", "[/web] "),
    ("{{len .Mounts}} {{(index .Mounts 1).Source}} {{slice .Args 1}}", "2 /tmp [80]"),
    ('{{printf "%-5s|%5d|%q|%v|%t" "ab" 42 "q" .Args true}}', 'ab   |   42|"q"|[-p 80]|true'),
    ("{{if and .Args (gt (len .Args) 1)}}many{{end}}", "many"),
    ("{{if or (eq .State.Pid 1) (ne .Name \"/web\")}}x{{else}}y{{end}}", "y"),
    ('{{range .Args}}{{if eq . "-p"}}{{continue}}{{end}}{{.}}{{end}}', "80"),
    ('{{range .Args}}{{.}}{{break}}{{end}}', "-p"),
    ("{{$n := 0}}{{range .Args}}{{$n = 1}}{{end}}{{$n}}", "1"),
    ("{{json .Name}} {{json .State.Pid}}", '"/web" 4242'),
    ('{{split "a:b" ":"}} {{title "web"}} {{pad "x" 1 2}}| {{truncate "abcdef" 3}}', "[a b] Web  x  | abc"),
    ("{{print 1 2 \"a\" 3}}", "1 2a3"),
    ("{{1.5}} {{0x10}} {{\"a\\tb\"}} {{`raw\\n`}} {{true}}", "1.5 16 a\tb raw\\n true"),
    ("{{not .State.ExitCode}}", "true"),
    ('{{json "<&>"}}', '"\\u003c\\u0026\\u003e"'),
    ("{{if and .State.Health .State.Health.Status}}h{{else}}none{{end}}", "none"),  # and/or are lazy, as Go's
    ("{{or .State.Error .Name}}|{{and .Name .Id}}|{{or 0 \"\"}}", "/web|abc123|"),
])
def test_forms_scripts_use(template, expected):
    assert render(template, DATA) == expected


@pytest.mark.parametrize("template, message", [
    ("{{.Nope}}", 'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'),
    ("x\n  {{ .State.Nope }}", 'template: :2:5: executing "" at <.State.Nope>: map has no entry for key "Nope"'),
    ("{{.Name", "template: :1:0: unclosed action"),
    ("{{end}}", "template: :1:0: unexpected {{end}}"),
    ("{{if .Name}}x", "a block is not closed with {{end}}"),
    ("{{nosuch .Name}}", 'template: :1:2: function "nosuch" not defined'),
    ('{{define "x"}}{{end}}', "{{define}} is not supported"),
    ("{{template \"x\"}}", "{{template}} is not supported"),
    ("{{.Name 3}}", "can't give argument to non-function .Name"),
    ("{{index .Args 5}}", "error calling index: index out of range: 5"),
    ('{{"abc}}', "unterminated quoted string"),
    ("{{range .Name}}{{end}}", "range can't iterate over /web"),
    ("{{$x}}", "undefined variable: $x"),
    ("{{ ! }}", "unexpected '!' in action"),
])
def test_errors_name_the_position(template, message):
    with pytest.raises(TemplateError) as err:
        render(template, DATA)
    assert message in str(err.value)


def test_parse_errors_come_before_execution():
    """A template is parsed once and executed per object: a bad one fails before any output."""
    with pytest.raises(TemplateError):
        Template("{{.Name}} {{if}}")
    t = Template("{{.Name}}")
    assert [t.execute({"Name": n}) for n in ("a", "b")] == ["a", "b"]
