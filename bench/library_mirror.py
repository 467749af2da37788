"""Mirroring the public library from an upstream: the catalog's sync next to skopeo alone.

Self-contained: its own stack (tests.e2e.stack.Stack: RabbitMQ vhost, registry with token auth,
every service as `nameko run`), and an upstream `docker-registry` on loopback with TAGS images
(one layer of LAYER_KIB random KiB each, distinct). Each round, on fresh names:

  * skopeo alone: `skopeo copy --all --preserve-digests` of every tag, one after the other, into
    the library as the library robot, the way an operator would script it (its password in the
    auth file, as `skopeo login` keeps it);
  * the catalog: `set_library_source` + `sync_library(wait=True)`, with the stack's
    LIBRARY_SYNC_CONCURRENCY (4 by default), timed as its caller sees it; then a second sync,
    which must copy nothing.

The token service hashes passwords with the production Argon2 parameters (auth's config.yml),
not the test stack's cheap ones. Prints each round and the medians, and their ratio. Exits 1 if
a sync did not copy every tag or a second sync copied anything.

    .venv/bin/python -m bench.library_mirror [--tags 20] [--rounds 3] [--layer-kib 512] [--json out.json]
"""

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from tests.e2e.stack import Stack
from tests.support import RegistryProcess, push_image


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layer-kib", type=int, default=512)
    parser.add_argument("--json", help="also write the figures here")
    return parser.parse_args(argv)


def skopeo_alone(stack, upstream, repository, tags, target, authfile):
    started = time.monotonic()
    for tag in tags:
        digest = upstream.manifest_digest(repository, tag)
        subprocess.run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "--authfile",
                authfile,
                "--all",
                "--preserve-digests",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                f"docker://{upstream.host}/{repository}@{digest}",
                f"docker://{stack.registry.host}/library/{target}:{tag}",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return time.monotonic() - started


def catalog_sync(stack, upstream, repository, tags, name):
    stack.rpc("catalog", "set_library_source", name, upstream.host, repository, tags=tags, insecure=True)
    started = time.monotonic()
    first = stack_call(stack, "sync_library", name, wait=True)
    took = time.monotonic() - started
    second = stack_call(stack, "sync_library", name, wait=True)
    return took, first["counts"], second["counts"]


def stack_call(stack, method, *args, **kwargs):
    with stack.admin_proxy(timeout=600) as proxy:
        return getattr(proxy.catalog, method)(*args, **kwargs)


def main(argv=None):
    args = parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="imagehub-bench-mirror-")
    upstream = RegistryProcess(None, None, workdir=os.path.join(workdir, "upstream"), notify=False).start()
    os.makedirs(os.path.join(workdir, "stack"))
    stack = Stack(os.path.join(workdir, "stack"))
    # The token service hashes passwords as in production (the test stack's cheap Argon2 would
    # hide what a login costs: skopeo alone logs in with the password on every copy).
    for key in ("AUTH_HASH_TIME_COST", "AUTH_HASH_MEMORY_KIB", "AUTH_HASH_PARALLELISM"):
        stack.services["auth"].own.pop(key, None)
    rounds, ok = [], True
    try:
        stack.start()
        robot = stack.services["catalog"].own
        authfile = os.path.join(workdir, "auth.json")
        with open(os.open(authfile, os.O_CREAT | os.O_WRONLY, 0o600), "w") as f:
            creds = f"{robot['LIBRARY_REGISTRY_USERNAME']}:{robot['LIBRARY_REGISTRY_PASSWORD']}"
            json.dump({"auths": {stack.registry.host: {"auth": base64.b64encode(creds.encode()).decode()}}}, f)
        for n in range(args.rounds):
            repository = f"bench/r{n}{uuid.uuid4().hex[:6]}"
            tags = [f"1.{i}" for i in range(args.tags)]
            for tag in tags:
                push_image(upstream.url, repository, tag, content=os.urandom(args.layer_kib * 1024))
            alone = skopeo_alone(stack, upstream, repository, tags, f"plain{n}{uuid.uuid4().hex[:6]}", authfile)
            synced, first, second = catalog_sync(stack, upstream, repository, tags, f"synced{n}{uuid.uuid4().hex[:6]}")
            ok &= first["copied"] == args.tags and second["copied"] == 0 and second["unchanged"] == args.tags
            rounds.append({"skopeo_alone_s": alone, "catalog_sync_s": synced, "first": first, "second": second})
            print(
                f"round {n + 1}: {args.tags} tags of {args.layer_kib} KiB: skopeo alone {alone:.2f} s, "
                f"catalog sync {synced:.2f} s ({first['copied']} copied); second sync copied {second['copied']}, "
                f"unchanged {second['unchanged']}",
                flush=True,
            )
    finally:
        stack.stop()
        upstream.cleanup()
    alone = statistics.median(r["skopeo_alone_s"] for r in rounds)
    synced = statistics.median(r["catalog_sync_s"] for r in rounds)
    concurrency = stack.env.get("CATALOG_LIBRARY_SYNC_CONCURRENCY", "4 (default)")
    print(
        f"median of {len(rounds)}: skopeo alone {alone:.2f} s, catalog sync {synced:.2f} s "
        f"(concurrency {concurrency}): ratio {synced / alone:.2f}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": rounds, "skopeo_alone_median_s": alone, "catalog_sync_median_s": synced}, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
