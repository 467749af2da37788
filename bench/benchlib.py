"""What every benchmark script here shares: its standard arguments, the shell, building and
pushing a busybox image with the real docker CLI, and writing the figures."""
import argparse
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parser(doc):
    """An argument parser with --registry, --amqp-uri and --json; the script adds its own."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--registry", default=os.environ.get("REGISTRY_HOST", "127.0.0.1:5000"))
    p.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"))
    p.add_argument("--json", help="also write the raw figures to this file")
    return p


def sh(*args, timeout=120):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout).stdout


def build(ref, marker):
    """A busybox image serving ``marker`` over HTTP on $PORT (scripts/busybox-image.sh)."""
    sh("bash", os.path.join(ROOT, "scripts/busybox-image.sh"), ref, marker)


def push(ref):
    """`docker push`; the manifest digest it printed."""
    out = sh("docker", "push", ref)
    return [line.split("digest: ")[1].split()[0] for line in out.splitlines() if "digest: " in line][-1]


def write_json(path, result):
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
