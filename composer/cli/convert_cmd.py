"""`composer convert`: the stack as Kubernetes manifests (composer/convert/). Loads the model as
`composer config` does, optionally pushes the built images (--push), converts, prints one warning line
per key with no equivalent (or refuses them all with --strict, before anything is pushed or written),
then writes a directory (all or nothing) or one stream."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert the stack to Kubernetes manifests",
                       description="Turn the resolved stack (what `composer config` prints) into Kubernetes "
                                   "manifests: one file per object and a kustomization.yaml, or one stream.")
    p.add_argument("services", nargs="*", metavar="SERVICE", help="only these services (and their dependencies)")
    p.add_argument("-o", "--output", default="-", metavar="DIR",
                   help="write one file per object into DIR ('-', the default: one stream on stdout)")
    p.add_argument("--namespace", metavar="NS", help="put every object in namespace NS (and make it)")
    p.add_argument("--k8s-version", default="1.30", metavar="VERSION", help="the cluster's version (default 1.30)")
    p.add_argument("--service-type", default="LoadBalancer", choices=("LoadBalancer", "NodePort"),
                   help="the Service type of published ports (default LoadBalancer)")
    p.add_argument("--push", metavar="REGISTRY", help="push built images to REGISTRY and name them by digest")
    p.add_argument("--strict", action="store_true", help="refuse keys that have no Kubernetes equivalent")
    p.add_argument("--wait-image", default=None, metavar="IMAGE",
                   help="image of the init containers that wait for dependencies (default busybox:1.36)")
    p.add_argument("-q", "--quiet", action="store_true", help="print no warnings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from composer.cli.projectopts import load_project_from_args
    from composer.convert import output
    from composer.convert.convert import WAIT_IMAGE, ConvertOptions, convert, push_built_images

    project = load_project_from_args(args, tuple(args.services))
    options = ConvertOptions(services=tuple(args.services), namespace=args.namespace, k8s_version=args.k8s_version,
                             service_type=args.service_type, wait_image=args.wait_image or WAIT_IMAGE)
    if args.push:  # what --push will name, so that --strict refuses before anything is pushed
        built = {n: f"{args.push}/pending" for n, s in project.services.items() if s.build is not None}
        options = replace(options, images=built)
    result = convert(project, options)
    from composer.convert.report import Report

    Report(list(result.unmapped)).raise_if_strict(args.strict)
    if args.push:
        from composer.cli.pull_progress import TransferDisplay
        from composer.images.store import ImageStore
        from composer.runtime import Runtime

        with TransferDisplay("Push", args.quiet) as display:
            pinned = push_built_images(project, ImageStore(Runtime().data_dir), args.push, args.services,
                                       progress=display)
        result = convert(project, replace(options, images=pinned))
    if not args.quiet:
        for item in result.unmapped:
            sys.stderr.write(f"composer: {'warning' if item.fatal else 'note'}: {item.line()}\n")
    if args.output == "-":
        output.write_stream(result.objects, sys.stdout)
    else:
        written = output.write_dir(result.objects, args.output, args.namespace)
        if not args.quiet:
            sys.stderr.write(f"wrote {len(written)} files to {args.output}\n")
    return 0
