"""`composer convert`: the loaded model (what `composer config` resolves) as Kubernetes manifests.
`convert.py` is the entry (options, the walk over services), `pods.py` one service's pod template,
`files.py` what becomes ConfigMaps, Secrets and claims, `network.py` the Services, `naming.py` names
and quantities in Kubernetes' syntax, `report.py` what could not be mapped (typed, one item per
service and key), `output.py` the files (all or nothing) or one stream, `checks.py` what a schema
cannot check (references, selectors, names). Sits beside ui above project: it may import config,
images (pushing built images) and project (the name a built image gets); nothing imports it but cli.

Imports nothing here."""
