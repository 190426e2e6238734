"""The keys of the specification composer models without honouring them on this host (`runtime`, `gpus`,
`post_start`, `cpu_quota`, ...), plus `attach`: each becomes a typed field of the model, printed
by `config`, reported by `service/keys.py` (`up` warns, `config --check-support` lists), never dropped.
A mixin of normalize.Normalizer: it uses its converters (bool_, int_, strmap, argv, err)."""

from __future__ import annotations

from typing import Any

from composer.config import model as m
from composer.config.merge import kv_to_dict
from composer.config.yamlsrc import opt_text as _opt_str
from composer.config.yamlsrc import scalar_text as _scalar_str

FM = m.FrozenMap


class CarriedKeys:
    def carried(self, p: tuple, d: dict) -> dict:
        """The keys composer models without honouring them (see model.Service), plus attach (develop: config/develop.py)."""
        out: dict[str, Any] = {"attach": self.bool_(p + ("attach",), d.get("attach"), True),
                               "use_api_socket": self.bool_(p + ("use_api_socket",), d.get("use_api_socket"))}
        for key in ("runtime", "cgroup_parent", "userns_mode", "uts", "isolation", "mac_address",
                    "pull_refresh_after"):
            out[key] = _opt_str(d.get(key))
        for key in ("cpu_count", "cpu_percent", "mem_swappiness"):
            out[key] = self.int_(p + (key,), d.get(key))
        for key in ("cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime"):
            v = d.get(key)
            out[key] = self.int_(p + (key,), v) if not isinstance(v, str) or v.lstrip("-").isdigit() else v
        out["annotations"] = self.strmap(d.get("annotations"))
        out["storage_opt"] = self.strmap(d.get("storage_opt"))
        for key in ("blkio_config", "credential_spec"):
            out[key] = m.freeze(d[key]) if d.get(key) is not None else None
        out["provider"] = self.provider(d.get("provider"))
        gpus = d.get("gpus")
        self.device_requests(p + ("gpus",), gpus if isinstance(gpus, list) else ())
        out["gpus"] = (FM({"count": -1}),) if gpus == "all" else tuple(m.freeze(g) for g in gpus or ())
        out["post_start"] = tuple(self.hook(p + ("post_start", i), h) for i, h in enumerate(d.get("post_start") or ()))
        out["pre_stop"] = tuple(self.hook(p + ("pre_stop", i), h) for i, h in enumerate(d.get("pre_stop") or ()))
        models = d.get("models")
        out["models"] = FM(sorted((str(k), None) for k in models) if isinstance(models, list) else
                           sorted((k, m.freeze(v)) for k, v in (models or {}).items()))
        return out

    def device_requests(self, path: tuple, entries: Any) -> None:
        """gpus / reservations.devices: `count` and `device_ids` exclude each other, as the reference says."""
        for i, e in enumerate(entries or ()):
            if isinstance(e, dict) and "count" in e and "device_ids" in e:
                raise self.err(path + (i,), "count and device_ids cannot be given together")

    @staticmethod
    def provider(pv: Any) -> FM | None:
        """`provider:` with each option a list of strings (an option may be given once or many times)."""
        if pv is None:
            return None
        opts = {k: [_scalar_str(x) for x in v] if isinstance(v, list) else [_scalar_str(v)]
                for k, v in (pv.get("options") or {}).items()}
        return m.freeze({**pv, **({"options": opts} if opts else {})})

    def hook(self, path: tuple, h: dict) -> m.Hook:
        return m.Hook(command=self.argv(path + ("command",), h.get("command")) or (), user=_opt_str(h.get("user")),
                      privileged=self.bool_(path + ("privileged",), h.get("privileged")),
                      working_dir=_opt_str(h.get("working_dir")),
                      environment=FM(sorted((str(k), _opt_str(v)) for k, v in kv_to_dict(h.get("environment")).items())))


