"""Config-only instructions, stages and ARG scoping, the cache key, without root."""

from __future__ import annotations

import pytest

from composer.errors import ImageError
from composer.images.dockerfile.cache import BuildCache, step_key
from composer.images.dockerfile.configsteps import apply, duration, workdir
from composer.images.dockerfile.dockerfile import parse
from composer.images.dockerfile.stages import plan_stages
from composer.images.dockerfile.words import Lexer
from composer.images.model import ImageConfig

LEX = Lexer()


def step(config: ImageConfig, line: str, env=None, inherited=True) -> ImageConfig:
    instr = parse("FROM a\n" + line).instructions[1]
    return apply(config, instr, env or config.env_dict(), LEX, cmd_inherited=inherited)


def test_env_uses_the_environment_before_the_instruction():
    config = step(ImageConfig(env=(("PATH", "/bin"),)), "ENV A=hello")
    config = step(config, "ENV A=bye B=$A")
    assert config.env_dict() == {"PATH": "/bin", "A": "bye", "B": "hello"}
    assert step(config, "ENV C one two").env_dict()["C"] == "one two"


def test_cmd_entrypoint_shell_forms():
    config = step(ImageConfig(cmd=("sh",)), "ENTRYPOINT [\"/init\"]")
    assert config.entrypoint == ("/init",) and config.cmd is None  # inherited CMD is reset
    config = step(ImageConfig(cmd=("x",)), "ENTRYPOINT /init", inherited=False)
    assert config.entrypoint == ("/bin/sh", "-c", "/init") and config.cmd == ("x",)
    config = step(ImageConfig(), 'SHELL ["/bin/bash", "-eu", "-c"]')
    assert step(config, "CMD echo $HOME").cmd == ("/bin/bash", "-eu", "-c", "echo $HOME")  # no substitution
    with pytest.raises(ImageError, match="JSON form"):
        step(ImageConfig(), "SHELL /bin/bash -c")


def test_expose_volume_label_user_stopsignal():
    config = step(ImageConfig(), "EXPOSE 80 53/udp ${P:-8080}/tcp")
    assert config.exposed_ports == ("53/udp", "80/tcp", "8080/tcp")
    assert step(ImageConfig(), 'VOLUME ["/data", "/logs"]').volumes == ("/data", "/logs")
    assert step(ImageConfig(), "VOLUME /a /b").volumes == ("/a", "/b")
    assert step(ImageConfig(), 'LABEL a=1 "b c"="d e"').labels == (("a", "1"), ("b c", "d e"))
    assert step(ImageConfig(), "USER ${U:-app}:staff").user == "app:staff"
    assert step(ImageConfig(), "STOPSIGNAL SIGQUIT").stop_signal == "SIGQUIT"
    with pytest.raises(ImageError, match="line 2: EXPOSE: invalid port"):
        step(ImageConfig(), "EXPOSE http")


def test_healthcheck():
    config = step(ImageConfig(), "HEALTHCHECK --interval=5s --retries=3 CMD wget -q -O- localhost || exit 1")
    assert config.healthcheck.test == ("CMD-SHELL", "wget -q -O- localhost || exit 1")
    assert config.healthcheck.interval == 5 and config.healthcheck.retries == 3
    assert step(ImageConfig(), 'HEALTHCHECK CMD ["true"]').healthcheck.test == ("CMD", "true")
    assert step(ImageConfig(), "HEALTHCHECK NONE").healthcheck.test == ("NONE",)
    assert duration("1m30s") == 90 and duration("500ms") == 0.5
    with pytest.raises(ImageError):
        duration("5 s")


def test_workdir_is_relative_to_the_previous_one():
    assert workdir("", "app") == "/app"
    assert workdir("/app", "src/../lib") == "/app/lib"
    assert workdir("/app", "/x") == "/x"


def test_stages_args_and_target():
    df = parse("ARG V=1\nARG BASE=busybox:${V}\nFROM ${BASE} AS one\nRUN a\nFROM one AS two\nFROM scratch AS three\n"
               "COPY --from=0 /a /a\nFROM other\n")
    plan = plan_stages(df, {}, "three", LEX)
    assert [s.index for s in plan.needed] == [0, 2]
    assert plan.stages[0].base == "busybox:1" and plan.stages[1].base_stage == 0
    plan = plan_stages(df, {"V": "2"}, "TWO", LEX)
    assert plan.stages[0].base == "busybox:2" and [s.index for s in plan.needed] == [0, 1]
    assert plan_stages(df, {}, None, LEX).needed[-1].base == "other"
    with pytest.raises(ImageError, match="target stage 'nope' could not be found"):
        plan_stages(df, {}, "nope", LEX)
    with pytest.raises(ImageError, match="before the first FROM"):
        plan_stages(parse("RUN x\nFROM a\n"), {}, None, LEX)
    with pytest.raises(ImageError, match="duplicate stage name"):
        plan_stages(parse("FROM a AS x\nFROM b AS x\n"), {}, None, LEX)


def test_cache_key_and_store(tmp_path):
    assert step_key("p", "RUN a") != step_key("p", "RUN b") != step_key("q", "RUN a")
    assert step_key("p", "COPY a /", "h1") != step_key("p", "COPY a /", "h2")
    cache = BuildCache(tmp_path)
    cache.put("k", {"layers": []})
    assert BuildCache(tmp_path).get("k") is None  # nothing is visible before commit
    cache.commit()
    assert BuildCache(tmp_path).get("k") == {"layers": []}
    other = BuildCache(tmp_path)
    other.put("j", {"x": 1})
    other.discard()
    other.commit()
    assert BuildCache(tmp_path).get("j") is None
