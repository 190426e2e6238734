"""`composer deploy --swarm` and `composer undeploy`: the same stack file on a Docker Swarm (deploy/)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from composer.cli.project_common import add_dry_run

    p = sub.add_parser("deploy", help="deploy the stack to a Docker Swarm (docker stack deploy)",
                       description="Resolve the stack as `composer config` does, build and push its images, "
                                   "report what a swarm will not honour, then `docker stack deploy` it and "
                                   "wait until every service runs.")
    p.add_argument("--swarm", action="store_true", required=True, help="deploy to the swarm DOCKER_HOST manages")
    p.add_argument("--registry", metavar="HOST[:PORT]", help="push built (and local-only) images here, pinned by digest")
    p.add_argument("--publish-mode", choices=("ingress", "host"), help="publish every port this way")
    p.add_argument("--endpoint-mode", choices=("vip", "dnsrr"), help="for services that do not choose")
    p.add_argument("--resolve-image", choices=("always", "changed", "never"), help="as docker stack deploy's")
    p.add_argument("--prune", action="store_true", help="remove services that are no longer in the file")
    p.add_argument("--strict", action="store_true", help="a key the swarm will not honour is an error")
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the services to converge")
    p.add_argument("--timeout", type=float, default=180.0, metavar="SECONDS", help="how long to wait (180)")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the stack file given to the swarm")
    add_dry_run(p)  # prints the stack file and the warnings; deploys nothing
    p.set_defaults(func=cmd_deploy)

    u = sub.add_parser("undeploy", help="remove the stack from the swarm (docker stack rm)")
    u.add_argument("--swarm", action="store_true", required=True, help="the stack deployed with deploy --swarm")
    u.add_argument("-d", "--detach", action="store_true", help="do not wait until it is gone")
    u.set_defaults(func=cmd_undeploy)


def _render(event) -> None:
    if event.kind == "warning":
        print(f"composer: warning: {event.detail}", file=sys.stderr)
    elif event.kind == "done":
        print(f"Stack {event.name} {event.detail or 'deployed'}", file=sys.stderr)
    else:
        print(f"{event.name}: {event.detail}", file=sys.stderr)


def cmd_deploy(args: argparse.Namespace) -> int:
    from composer.cli.project_common import context, dry_run, load_model
    from composer.deploy import swarm

    opts = swarm.DeployOptions(registry=args.registry, publish_mode=args.publish_mode,
                               endpoint_mode=args.endpoint_mode, strict=args.strict, prune=args.prune,
                               detach=args.detach, timeout=args.timeout, resolve_image=args.resolve_image,
                               output=args.output)
    model = load_model(args)
    if dry_run(args):
        import yaml

        doc, notes = swarm.plan(model, opts)
        for note in notes:
            print(f"composer: warning: {note}", file=sys.stderr)
        sys.stdout.write(yaml.safe_dump(doc, sort_keys=False))
        return 0
    swarm.deploy(context(args, model, model.name).runner, opts, _render)
    return 0


def cmd_undeploy(args: argparse.Namespace) -> int:
    from composer.cli.project_common import load_optional
    from composer.deploy import swarm

    _, name = load_optional(args)
    swarm.undeploy(name, _render, detach=args.detach)
    return 0
