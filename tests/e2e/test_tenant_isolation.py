"""Tenant isolation, end to end: tenant A acting on tenant B's repositories, tags and deployments
through every catalog and deployer RPC is refused, B's state does not move, and nothing of B's
leaks through answers or error messages.

One stack for the module (``nameko run`` catalog, webhook and deployer on their own vhost, a
registry of their own, PostgreSQL schemas of their own, the machine's two Docker engines). Set up
once, through the real paths (docker CLI and registry HTTP pushes, the registry's notifications,
the webhook, the catalog, the deployer's rollouts):

* tenant B: ``B/web`` (busybox httpd ``v1``, ``v2``; ``latest`` pushed on v1 then moved to v2; ``old``
  pushed then deleted by B: its history says ``removed``), ``B/vault…_ownbase:1.0`` (a custom
  base image), ``B/ledger…`` with two distinctive tags on one digest (so that B's own delete
  without ``force`` would be a ``Conflict`` naming the sibling), two pushes nobody can index
  (``B/ghost…``, whose manifest the registry lacks: a dead letter of the catalog's, and
  ``B/nested…/x``, three path components: set aside by the webhook; the token service refuses B
  that push, so its notification is posted to the webhook as the registry would send it);
  a deployment ``web`` with 2 replicas at revision 2 (v1, then updated to v2), and a deployment
  ``gone…`` created and deleted;
* tenant A: ``A/web:v1`` and a deployment also named ``web`` (names are per tenant), with the
  auto-deploy policy ``semver:minor``;
* the public library: ``library/pub…:1.0``.

The matrix then calls every RPC as A (or as a malformed/forged tenant) against B's objects. Each
row asserts the exact answer, that the answer (result or error, serialized) holds none of B's
names, tags, digests, IDs or tenant ID that the call did not itself supply, and, for calls that
could change something, that the objects aimed at are exactly as before.

Which refusal, and why (docs/catalog-api.md, docs/deployer-api.md):

* **Catalogue:** any name in another tenant's namespace is ``Forbidden`` **whether or not it
  exists** (the namespace is in the name the caller gives, so refusing by name tells nothing):
  the same message for ``B/web`` and ``B/nosuch``, for tag ``v1`` and tag ``nosuch``.
* **Deployer, by deployment ID:** another tenant's deployment (live or deleted, in any spelling
  of its UUID) is ``Forbidden`` with ``deployment <id> belongs to another tenant`` and nothing
  else; an unknown ID is ``NotFound``. This confirms that an ID exists, which the contract
  accepts: IDs are random UUID4s that only their owner is ever shown.
* **Deployer, by image:** a tag in another tenant's namespace is ``Forbidden`` (the catalog's
  rule, whether or not the tag exists); a digest reference is ``InvalidRequest`` for everyone
  before any lookup (the deployer pins digests itself).
* A malformed tenant ID (another case, white space, a slash, ``..``, empty, ``library``) is
  ``InvalidRequest`` naming ``tenant_id``; a malformed repository name is ``InvalidReference``.
  Nothing is normalised into B's namespace.

Operator RPCs (``list_set_aside_events``, ``list_dead_letters``, ``resync``, ``get_resync``) take no tenant: the broker
lets only the admin user reach them, and the catalog only with a platform admin's identity
(``TestOperatorOnlyRpcs``; docs/security.md). Then: A deleting its own copy of B's image (same digest) leaves B's
alone; B's whole state is compared with the set-up's (catalogue, registry, history, deployments,
containers on both engines, what the instances serve); last, B pushing ``B/web:v1.1`` does not
move A's ``web`` (policy ``semver:minor``), while A's own ``v1.1`` does.

The figures (checks, refusals by type) are printed at the end of the module:
``.venv/bin/python -m pytest tests/e2e/test_tenant_isolation.py -q``.
"""

import json
import re
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import amqp.exceptions
import kombu.exceptions
import pytest
import requests
import sqlalchemy as sa

from shared.contracts.errors import Conflict, Forbidden, ImagehubError, InvalidReference, InvalidRequest, NotFound
from shared.runtime.identity import IdentifiedClusterRpcProxy
from tests.conftest import postgres_schema
from tests.e2e.conftest import DockerCLI
from tests.e2e.stack import ENGINES, Stack
from tests.support import notification_envelope, push_image, push_notification, wait_until

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

WAIT = 45  # seconds for a push to be indexed or a rollout to settle, on a loaded machine
SETTLED = ("running", "failed", "rollout_failed", "rolled_back", "degraded", "stopped", "deleted")
SMALL = {"cpu": 0.1, "memory": "32m", "ports": [{}], "health": {"type": "http", "timeout": 15}}


# -- the stack, the RPC client and the world ------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The e2e stack on PostgreSQL (as in production), no periodic resync (passes are asked for)."""
    with postgres_schema() as catalog_db, postgres_schema() as deployer_db:
        stack = Stack(str(tmp_path_factory.mktemp("stack")))
        stack.env.update(CATALOG_DB_URL=catalog_db, DEPLOYER_DB_URL=deployer_db, CATALOG_RESYNC_INTERVAL="0")
        stack.catalog_db = catalog_db
        stack.dockers = []  # the docker CLIs the world logs in, one per tenant
        try:
            yield stack.start()
        finally:
            # Containers first (stop() removes them), then the images built here: an image a
            # container still runs would only lose its tag and stay behind, dangling.
            stack.stop()
            for docker in stack.dockers:
                docker.cleanup()


class Rpc:
    """One ``ClusterRpcProxy`` for the module (a proxy per call costs a connection each), made
    again if the broker went away under it (other suites restart RabbitMQ)."""

    TRANSPORT_ERRORS = (OSError, amqp.exceptions.ConnectionError, kombu.exceptions.OperationalError)

    def __init__(self, amqp_uri):
        self.config = {"AMQP_URI": amqp_uri}
        self.cluster = self.proxy = None

    def __call__(self, service, method, *args, **kwargs):
        for attempt in (1, 2):
            if self.proxy is None:
                self.cluster = IdentifiedClusterRpcProxy(self.config, timeout=20)
                self.proxy = self.cluster.start()
            try:
                return getattr(getattr(self.proxy, service), method)(*args, **kwargs)
            except amqp.exceptions.AccessRefused:  # the broker closed the channel: a new proxy next
                self.close()
                raise
            except self.TRANSPORT_ERRORS:
                self.close()
                if attempt == 2:
                    raise

    def close(self):
        cluster, self.cluster, self.proxy = self.cluster, None, None
        if cluster is not None:
            try:
                cluster.stop()
            except (*self.TRANSPORT_ERRORS, amqp.exceptions.AMQPError):
                pass


def hex_id(n=8):
    return uuid.uuid4().hex[:n]


class World:
    """Tenants A and B, what each has, and everything of B's that must never reach A."""

    def __init__(self, stack, rpc):
        self.stack, self.rpc = stack, rpc
        self.registry = stack.registry
        self.reg = stack.registry.host
        self.A, self.B = f"ta{hex_id()}", f"tb{hex_id()}"
        self.a_web = f"{self.A}/web"
        self.web = f"{self.B}/web"
        self.base_name, self.ledger_name, self.ghost_name = (
            f"vault{hex_id(6)}_ownbase",
            f"ledger{hex_id(6)}",
            f"ghost{hex_id(6)}",
        )
        self.base, self.ledger, self.ghost = (
            f"{self.B}/{n}" for n in (self.base_name, self.ledger_name, self.ghost_name)
        )
        self.rel, self.stable = f"rel-{hex_id(6)}", f"stable-{hex_id(6)}"
        self.nested = (
            f"{self.B}/nested{hex_id(6)}/x"  # three path components: refused by auth, set aside by the webhook
        )
        self.gone_name = f"gone{hex_id(6)}"
        self.lib = f"library/pub{hex_id(6)}"
        self.d = {}  # B's digests by name
        self.markers = {}
        # Each tenant pushes as its own developer account: the docker CLI logged in as it (a
        # configuration directory each), and a registry HTTP session. The library: the admin's.
        self.docker = {}
        for tenant in (self.A, self.B):
            stack.add_tenant(tenant)
            docker = DockerCLI(self.reg, config_dir=f"{stack.workdir}/docker-{tenant}")
            stack.dockers.append(docker)
            self.docker[tenant] = docker.login(*stack.accounts[tenant])

    # -- helpers --------------------------------------------------------------------------------
    def catalog(self, method, *args, **kwargs):
        return self.rpc("catalog", method, *args, **kwargs)

    def deployer(self, method, *args, **kwargs):
        return self.rpc("deployer", method, *args, **kwargs)

    def operator(self, method, *args, **kwargs):
        """A catalog operators' method: the admin broker user, with a platform admin's identity."""
        return self.stack.rpc("catalog", method, *args, **kwargs)

    def dead_letters(self):
        return self.operator("list_dead_letters", page_size=200)["items"]

    def dead_letter(self, dead_letter_id):
        return self.operator("get_dead_letter", dead_letter_id)

    def indexed(self, tenant, repository, tag, digest):
        def check():
            try:
                return self.catalog("get_tag", tenant, repository, tag)["digest"] == digest
            except NotFound:
                return False

        wait_until(check, timeout=WAIT, interval=0.1, what=f"{repository}:{tag} -> {digest} in the catalogue")

    def build_and_push(self, repository, tag, owner):
        marker = f"{repository}:{tag}:{hex_id()}"
        ref = self.docker[owner].build(repository, tag, marker=marker)
        digest = self.docker[owner].push(ref)
        self.indexed(owner, repository, tag, digest)
        self.markers[digest] = marker
        return ref, digest

    def http_push(self, repository, tag, owner, content):
        digest = push_image(self.registry.url, repository, tag, content=content, session=self.stack.session(owner))[
            "digest"
        ]
        self.indexed(owner, repository, tag, digest)
        return digest

    def delete_own_tag(self, tenant, repository, tag):
        """``delete_tag`` by the repository's owner; its answer. It races the registry's own delete
        notification for the same tag (both lock the repository row first, then its tags, so
        they cannot deadlock: catalog.deleting); any error fails the test."""
        return self.catalog("delete_tag", tenant, repository, tag)

    def settle(self, tenant, deployment_id, status):
        def check():
            found = self.deployer("get_deployment", tenant, deployment_id)
            return found if found["status"] in SETTLED and found["operation"] is None else None

        found = wait_until(check, timeout=WAIT, interval=0.1, what=f"deployment {deployment_id} settled")
        assert found["status"] == status, found
        return found

    # -- set-up -----------------------------------------------------------------------------------
    def build(self):
        A, B = self.A, self.B
        self.http_push(self.lib, "1.0", None, f"library {self.lib}".encode())

        ref_v1, self.d["v1"] = self.build_and_push(self.web, "v1", B)
        ref_v2, self.d["v2"] = self.build_and_push(self.web, "v2", B)
        for source, digest in ((ref_v1, self.d["v1"]), (ref_v2, self.d["v2"])):  # latest: pushed, then moved
            self.docker[B].push(self.docker[B].tag(source, self.web, "latest"))
            self.indexed(B, self.web, "latest", digest)
        self.d["old"] = self.http_push(self.web, "old", B, f"old {hex_id()}".encode())
        deleted = self.delete_own_tag(B, self.web, "old")
        assert deleted["deleted_tags"] == ["old"]
        assert self.registry.tags(self.web) == ["latest", "v1", "v2"]
        self.d["base"] = self.http_push(self.base, "1.0", B, f"base {hex_id()}".encode())
        self.ledger_content = f"ledger {hex_id()}".encode()
        self.d["ledger"] = self.http_push(self.ledger, self.rel, B, self.ledger_content)
        assert self.http_push(self.ledger, self.stable, B, self.ledger_content) == self.d["ledger"]
        _, self.a_v1 = self.build_and_push(self.a_web, "v1", A)

        # Pushes nobody can index, kept for operators with B's names: a manifest the registry does
        # not have (parked by the catalog as a dead letter), a name with three path components
        # (set aside by the webhook).
        # The token service grants nobody a name outside <namespace>/<name>, so B's push of the
        # nested name is refused and its notification is posted as the registry would send it.
        with pytest.raises(requests.HTTPError) as refused:
            push_image(self.registry.url, self.nested, "v1", content=b"nested", session=self.stack.session(B))
        assert refused.value.response.status_code == 401
        self.d["ghost"] = "sha256:" + uuid.uuid4().hex * 2
        self.d["nested"] = "sha256:" + uuid.uuid4().hex * 2
        for repository, digest in ((self.ghost, self.d["ghost"]), (self.nested, self.d["nested"])):
            answer = self.stack.post_events(
                notification_envelope(push_notification(repository, digest, tag="v1", registry_host=self.reg))
            )
            assert answer.status_code < 300, answer.text
        wait_until(
            lambda: (
                self.nested in {e["repository"] for e in self.operator("list_set_aside_events")["items"]}
                and any(self.ghost in serialized(self.dead_letter(e["id"])) for e in self.dead_letters())
            ),
            timeout=WAIT,
            interval=0.2,
            what=f"{self.nested} set aside and {self.ghost} a dead letter",
        )

        b_dep = self.deployer("create_deployment", B, dict(SMALL, name="web", image=f"{self.web}:v1", replicas=2))
        a_dep = self.deployer(
            "create_deployment",
            A,
            dict(SMALL, name="web", image=f"{self.a_web}:v1", replicas=1, auto_deploy={"policy": "semver:minor"}),
        )
        gone = self.deployer(
            "create_deployment", B, dict(SMALL, name=self.gone_name, image=f"{self.web}:v1", replicas=0)
        )
        self.b_dep, self.a_dep, self.b_gone = b_dep["id"], a_dep["id"], gone["id"]
        self.settle(B, self.b_dep, "running")
        self.deployer("update_deployment", B, self.b_dep, {"tag": "v2"})
        self.settle(B, self.b_gone, "stopped")
        self.deployer("delete_deployment", B, self.b_gone)
        self.settle(B, self.b_gone, "deleted")
        running = self.settle(B, self.b_dep, "running")
        assert (running["revision"], running["serving_revision"], running["serving_digest"]) == (2, 2, self.d["v2"])
        self.settle(A, self.a_dep, "running")
        self.b_ports = sorted(int(i["address"].rsplit(":", 1)[1]) for i in running["instances"])
        self.secrets = self.collect_secrets()
        self.initial = {key: self.snapshot(key) for key in SNAPSHOTS}

    def collect_secrets(self):
        """Every identifier of B's that A's calls must not be told (unless they supplied it)."""
        B = self.B
        found = {
            B,
            self.web,
            self.base,
            self.ledger,
            self.ghost,
            self.base_name,
            self.ledger_name,
            self.ghost_name,
            self.nested,
            self.nested.split("/")[1],
            self.rel,
            self.stable,
            self.gone_name,
            f"ih-{B}",
        }
        digests = set(self.d.values())
        for repository in (self.web, self.base, self.ledger):
            for tag in self.catalog("list_tags", B, repository)["items"]:
                detail = self.catalog("get_tag", B, repository, tag["tag"])
                digests.update([detail["digest"], detail["image_id"], *detail["layers"]])
            for entry in self.catalog("list_tag_history", B, repository)["items"]:
                digests.update(d for d in (entry["digest"], entry["previous_digest"]) if d)
                if entry["event_id"]:
                    found.update([entry["event_id"], entry["event_id"][:8]])
        for deployment_id in (self.b_dep, self.b_gone):
            found.update([deployment_id, deployment_id[:8]])
            for instance in self.deployer("get_deployment", B, deployment_id)["instances"]:
                found.update(
                    [
                        instance["id"],
                        instance["id"][:8],
                        instance["container_id"],
                        instance["container_id"][:12],
                        instance["container_name"],
                    ]
                )
            for revision in self.deployer("list_revisions", B, deployment_id)["items"]:
                digests.add(revision["digest"])
        for digest in digests:
            found.update([digest, digest.split(":", 1)[1][:12]])
        return sorted(found)

    def snapshot(self, key):
        return SNAPSHOTS[key](self)


def _deployment(found):
    """A deployment as a refused call must leave it: every field, and its instances."""
    return dict(found, instances=sorted(tuple(sorted(i.items())) for i in found["instances"]))


def _repository(w, owner, repository):
    tags = sorted((t["tag"], t["digest"]) for t in w.catalog("list_tags", owner, repository, page_size=200)["items"])
    in_registry = {tag: w.registry.manifest_digest(repository, tag) for tag in w.registry.tags(repository)}
    history = w.catalog("list_tag_history", owner, repository, page_size=200)["items"]
    return {
        "catalogue": tags,
        "registry": in_registry,
        "history": [(h["tag"], h["action"], h["digest"]) for h in history],
    }


SNAPSHOTS = {
    "B.dep": lambda w: (
        _deployment(w.deployer("get_deployment", w.B, w.b_dep)),
        w.deployer("list_revisions", w.B, w.b_dep),
    ),
    "B.gone": lambda w: (
        _deployment(w.deployer("get_deployment", w.B, w.b_gone)),
        w.deployer("list_revisions", w.B, w.b_gone),
    ),
    "A.dep": lambda w: _deployment(w.deployer("get_deployment", w.A, w.a_dep)),
    "deployments": lambda w: (
        [d["id"] for d in w.deployer("list_deployments", w.A)["items"]],
        [d["id"] for d in w.deployer("list_deployments", w.B)["items"]],
    ),
    "B.web": lambda w: _repository(w, w.B, w.web),
    "B.base": lambda w: _repository(w, w.B, w.base),
    "B.ledger": lambda w: _repository(w, w.B, w.ledger),
    "library": lambda w: _repository(w, None, w.lib),
    "B.repositories": lambda w: w.catalog("list_repositories", w.B),
}


@pytest.fixture(scope="module")
def world(stack):
    rpc = Rpc(stack.role_uri("platform"))  # a platform component: it names the tenant
    try:
        world = World(stack, rpc)
        world.build()
        yield world
    finally:
        rpc.close()


# -- the matrix -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    service: str
    method: str
    arguments: Callable  # world -> (args, kwargs)
    expect: object  # an error class, or a function (world, result) asserting the answer
    touches: tuple[str, ...] = ()  # SNAPSHOTS keys that must not change
    match: str = None  # a regular expression the error message must match


def case(case_id, service, method, arguments, expect, touches=(), match=None, xfail=None):
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(Case(service, method, arguments, expect, tuple(touches), match), id=case_id, marks=marks)


def repositories(*names):
    """The answer is a list holding exactly these repositories (world attribute names)."""

    def check(w, result):
        expected = sorted(getattr(w, n) for n in names)
        assert sorted(i["repository"] for i in result["items"]) == expected
        assert result["total"] == len(expected)

    return check


def empty_page(total):
    def check(w, result):
        assert (result["items"], result["total"]) == ([], total)

    return check


def parsed(**expected):
    """parse_reference echoes the reference it was given and looks nothing up."""

    def check(w, result):
        want = {k: (v(w) if callable(v) else v) for k, v in expected.items()}
        assert {k: result[k] for k in want} == want
        assert (result["is_public"], result["is_ownbase"]) == (False, False)

    return check


def only_a_deployments(w, result):
    assert [d["id"] for d in result["items"]] == [w.a_dep]
    assert result["items"][0]["tenant_id"] == w.A


def pools(w, result):
    members = [m for pool in result["items"] for m in pool["hosts"] + pool.get("nodes", [])]
    assert [(p["name"], p["kind"]) for p in result["items"]] == [("swarm", "swarm"), ("engines", "engines")]
    # Exposed, by design: how many instances each host (swarm node) carries and what they reserve,
    # counting every tenant's (here B's 2 and A's 1, on the default pool), without any name or ID.
    assert sum(m["instances"] for m in members) == 3


def spec(**fields):
    """A small spec named ``probe``; ``fields`` override it (callables get the world)."""
    return lambda w: (
        dict(SMALL, name="probe", replicas=1) | {k: (v(w) if callable(v) else v) for k, v in fields.items()}
    )


TENANT_VARIANTS = {  # B's tenant ID forged or mangled as the caller's tenant_id
    "B-upper": lambda w: w.B.upper(),
    "B-capitalised": lambda w: w.B.capitalize(),
    "B-leading-space": lambda w: f" {w.B}",
    "B-trailing-space": lambda w: f"{w.B} ",
    "B-newline": lambda w: f"{w.B}\n",
    "B-nul": lambda w: f"{w.B}\x00",
    "B-trailing-slash": lambda w: f"{w.B}/",
    "A-slash-dotdot-B": lambda w: f"{w.A}/../{w.B}",
    "dotdot-B": lambda w: f"../{w.B}",
    "A-encoded-dotdot-B": lambda w: f"{w.A}%2F..%2F{w.B}",
    "B-glob": lambda w: f"{w.B[:4]}*",
    "percent": lambda w: "%",
    "empty": lambda w: "",
    "library": lambda w: "library",
    "LIBRARY": lambda w: "LIBRARY",
    "B-in-a-list": lambda w: [w.B],
    "B-in-a-mapping": lambda w: {"tenant_id": w.B},
}

REPOSITORY_VARIANTS = {  # B/web written so that a lax parser might land in B's namespace
    "B-upper/web": lambda w: f"{w.B.upper()}/web",
    "A/../B/web": lambda w: f"{w.A}/../{w.B}/web",
    "../B/web": lambda w: f"../{w.B}/web",
    "A/B/web": lambda w: f"{w.A}/{w.B}/web",
    "A%2F..%2FB/web": lambda w: f"{w.A}%2F..%2F{w.B}/web",
    "B/web/": lambda w: f"{w.B}/web/",
    "/B/web": lambda w: f"/{w.B}/web",
    "B//web": lambda w: f"{w.B}//web",
    " B/web": lambda w: f" {w.B}/web",
    "registry/B/web": lambda w: f"{w.reg}/{w.B}/web",
    "B/web:v1": lambda w: f"{w.B}/web:v1",
    "B/web@digest": lambda w: f"{w.B}/web@{w.d['v1']}",
}

TENANT_MESSAGE = r"^tenant_id "


def catalog_cases():
    rows = [
        # list_public_repositories: the library only, whatever the query
        case(
            "list_public_repositories[no query]",
            "catalog",
            "list_public_repositories",
            lambda w: ((), {}),
            repositories("lib"),
        ),
        case(
            "list_public_repositories[query=B]",
            "catalog",
            "list_public_repositories",
            lambda w: ((), {"query": w.B}),
            empty_page(0),
        ),
        case(
            "list_public_repositories[query=web]",
            "catalog",
            "list_public_repositories",
            lambda w: ((), {"query": "web"}),
            empty_page(0),
        ),
        case(
            "list_public_repositories[query=B/ledger name]",
            "catalog",
            "list_public_repositories",
            lambda w: ((), {"query": w.ledger_name}),
            empty_page(0),
        ),
        case(
            "list_public_repositories[query=_ownbase]",
            "catalog",
            "list_public_repositories",
            lambda w: ((), {"query": "_ownbase"}),
            empty_page(0),
        ),
        # list_repositories: A's own, whatever the query
        case("list_repositories[A]", "catalog", "list_repositories", lambda w: ((w.A,), {}), repositories("a_web")),
        case(
            "list_repositories[A, query=B]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"query": w.B}),
            empty_page(0),
        ),
        case(
            "list_repositories[A, query=B/]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"query": f"{w.B}/"}),
            empty_page(0),
        ),
        case(
            "list_repositories[A, query=B/web]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"query": w.web}),
            empty_page(0),
        ),
        case(
            "list_repositories[A, query=web]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"query": "web"}),
            repositories("a_web"),
        ),
        case(
            "list_repositories[A, query=B's ownbase name]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"query": w.base_name}),
            empty_page(0),
        ),
        case(
            "list_repositories[A, query=_ownbase]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"query": "_ownbase"}),
            empty_page(0),
        ),
        case(
            "list_repositories[A, query=B's ledger name]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"query": w.ledger_name}),
            empty_page(0),
        ),
        case(
            "list_repositories[A, query=%]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"query": "%"}),
            empty_page(0),
        ),
        case(
            "list_repositories[A, query=_]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"query": "_"}),
            empty_page(0),
        ),
        case(
            "list_repositories[A, ownbase=True]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"ownbase": True}),
            empty_page(0),
        ),
        case(
            "list_repositories[A, ownbase=False]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"ownbase": False}),
            repositories("a_web"),
        ),
        case(
            "list_repositories[A, page=2]",
            "catalog",
            "list_repositories",
            lambda w: ((w.A,), {"page": 2}),
            empty_page(1),
        ),
        case(
            "list_repositories[None]",
            "catalog",
            "list_repositories",
            lambda w: ((None,), {}),
            InvalidRequest,
            match=r"^tenant_id is required",
        ),
        # get_repository / list_tags / get_tag / list_tag_history: Forbidden, existing or not
        *[
            case(
                f"get_repository[{who}, {label}]",
                "catalog",
                "get_repository",
                lambda w, who=who, target=target: ((None if who == "anonymous" else w.A, target(w)), {}),
                Forbidden,
                match=r"may not read",
            )
            for who in ("A", "anonymous")
            for label, target in (
                ("B/web", lambda w: w.web),
                ("B/ownbase", lambda w: w.base),
                ("B/ledger", lambda w: w.ledger),
                ("B/ghost", lambda w: w.ghost),
                ("B/nosuch", lambda w: f"{w.B}/nosuch"),
            )
        ],
        *[
            case(
                f"list_tags[{who}, {label}]",
                "catalog",
                "list_tags",
                lambda w, who=who, target=target: ((None if who == "anonymous" else w.A, target(w)), {}),
                Forbidden,
                match=r"may not read",
            )
            for who in ("A", "anonymous")
            for label, target in (
                ("B/web", lambda w: w.web),
                ("B/ownbase", lambda w: w.base),
                ("B/nosuch", lambda w: f"{w.B}/nosuch"),
            )
        ],
        case(
            "list_tags[A, B/web, page=2, page_size=1]",
            "catalog",
            "list_tags",
            lambda w: ((w.A, w.web), {"page": 2, "page_size": 1}),
            Forbidden,
            match=r"may not read",
        ),
        *[
            case(
                f"get_tag[{who}, {label}]",
                "catalog",
                "get_tag",
                lambda w, who=who, target=target: ((None if who == "anonymous" else w.A, *target(w)), {}),
                Forbidden,
                match=r"may not read",
            )
            for who in ("A", "anonymous")
            for label, target in (
                ("B/web:v1", lambda w: (w.web, "v1")),
                ("B/web:latest", lambda w: (w.web, "latest")),
                ("B/web:old (deleted)", lambda w: (w.web, "old")),
                ("B/web:nosuch", lambda w: (w.web, "nosuch")),
                ("B/ownbase:1.0", lambda w: (w.base, "1.0")),
                ("B/ledger:rel", lambda w: (w.ledger, w.rel)),
            )
        ],
        case(
            "get_tag[A, B/web, tag=../v1]",
            "catalog",
            "get_tag",
            lambda w: ((w.A, w.web, "../v1"), {}),
            InvalidReference,
        ),
        *[
            case(
                f"list_tag_history[{who}, {label}]",
                "catalog",
                "list_tag_history",
                lambda w, who=who, target=target: ((None if who == "anonymous" else w.A, *target(w)), {}),
                Forbidden,
                match=r"may not read",
            )
            for who in ("A", "anonymous")
            for label, target in (
                ("B/web", lambda w: (w.web,)),
                ("B/web, tag=latest", lambda w: (w.web, "latest")),
                ("B/web, tag=old (deleted)", lambda w: (w.web, "old")),
                ("B/ledger", lambda w: (w.ledger,)),
                ("B/nosuch", lambda w: (f"{w.B}/nosuch",)),
            )
        ],
        # delete_tag: Forbidden before any lookup (so no Conflict naming B's sibling tags), force or not
        *[
            case(
                f"delete_tag[A, {label}, force={force}]",
                "catalog",
                "delete_tag",
                lambda w, target=target, force=force: ((w.A, *target(w)), {"force": force}),
                Forbidden,
                touches=touches,
                match=r"may not change",
            )
            for label, target, touches in (
                ("B/web:v1", lambda w: (w.web, "v1"), ("B.web",)),
                ("B/web:latest", lambda w: (w.web, "latest"), ("B.web",)),
                ("B/ownbase:1.0", lambda w: (w.base, "1.0"), ("B.base",)),
                ("B/ledger:rel (shares its digest)", lambda w: (w.ledger, w.rel), ("B.ledger",)),
                ("B/nosuch:v1", lambda w: (f"{w.B}/nosuch", "v1"), ("B.repositories",)),
            )
            for force in (False, True)
        ],
        case(
            "delete_tag[A, library:1.0, force=True]",
            "catalog",
            "delete_tag",
            lambda w: ((w.A, w.lib, "1.0"), {"force": True}),
            Forbidden,
            touches=("library",),
            match=r"public library, which is read-only",
        ),
        case(
            "delete_tag[library as tenant, library:1.0]",
            "catalog",
            "delete_tag",
            lambda w: (("library", w.lib, "1.0"), {"force": True}),
            InvalidRequest,
            touches=("library",),
            match=r"^tenant_id 'library' is the public library, not a tenant",
        ),
        case(
            "delete_tag[None, library:1.0]",
            "catalog",
            "delete_tag",
            lambda w: ((None, w.lib, "1.0"), {"force": True}),
            InvalidRequest,
            touches=("library",),
            match=r"^tenant_id is required",
        ),
        case(
            "delete_tag[None, B/web:v1]",
            "catalog",
            "delete_tag",
            lambda w: ((None, w.web, "v1"), {"force": True}),
            InvalidRequest,
            touches=("B.web",),
            match=r"^tenant_id is required",
        ),
        # parse_reference: no tenant, no lookup: it echoes what it was given
        case(
            "parse_reference[registry/B/web:v1]",
            "catalog",
            "parse_reference",
            lambda w: ((f"{w.reg}/{w.B}/web:v1",), {}),
            parsed(registry=lambda w: w.reg, namespace=lambda w: w.B, name="web", tag="v1", digest=None),
        ),
        case(
            "parse_reference[B/web@digest]",
            "catalog",
            "parse_reference",
            lambda w: ((f"{w.B}/web@{w.d['v1']}",), {}),
            parsed(namespace=lambda w: w.B, name="web", tag=None, digest=lambda w: w.d["v1"]),
        ),
        case(
            "parse_reference[B-upper/web]",
            "catalog",
            "parse_reference",
            lambda w: ((f"{w.B.upper()}/web",), {}),
            InvalidReference,
            match=r"must be lower-case",
        ),
    ]
    for label, variant in REPOSITORY_VARIANTS.items():
        rows += [
            case(
                f"get_repository[A, repository={label}]",
                "catalog",
                "get_repository",
                lambda w, v=variant: ((w.A, v(w)), {}),
                InvalidReference,
            ),
            case(
                f"list_tags[A, repository={label}]",
                "catalog",
                "list_tags",
                lambda w, v=variant: ((w.A, v(w)), {}),
                InvalidReference,
            ),
            case(
                f"get_tag[A, repository={label}]",
                "catalog",
                "get_tag",
                lambda w, v=variant: ((w.A, v(w), "v1"), {}),
                InvalidReference,
            ),
            case(
                f"list_tag_history[A, repository={label}]",
                "catalog",
                "list_tag_history",
                lambda w, v=variant: ((w.A, v(w)), {}),
                InvalidReference,
            ),
            case(
                f"delete_tag[A, repository={label}, force=True]",
                "catalog",
                "delete_tag",
                lambda w, v=variant: ((w.A, v(w), "v1"), {"force": True}),
                InvalidReference,
                touches=("B.web",),
            ),
        ]
    for label, variant in TENANT_VARIANTS.items():
        rows += [
            case(
                f"list_repositories[tenant={label}]",
                "catalog",
                "list_repositories",
                lambda w, v=variant: ((v(w),), {}),
                InvalidRequest,
                match=TENANT_MESSAGE,
            ),
            case(
                f"get_repository[tenant={label}, B/web]",
                "catalog",
                "get_repository",
                lambda w, v=variant: ((v(w), w.web), {}),
                InvalidRequest,
                match=TENANT_MESSAGE,
            ),
            case(
                f"list_tags[tenant={label}, B/web]",
                "catalog",
                "list_tags",
                lambda w, v=variant: ((v(w), w.web), {}),
                InvalidRequest,
                match=TENANT_MESSAGE,
            ),
            case(
                f"get_tag[tenant={label}, B/web:v1]",
                "catalog",
                "get_tag",
                lambda w, v=variant: ((v(w), w.web, "v1"), {}),
                InvalidRequest,
                match=TENANT_MESSAGE,
            ),
            case(
                f"list_tag_history[tenant={label}, B/web]",
                "catalog",
                "list_tag_history",
                lambda w, v=variant: ((v(w), w.web), {}),
                InvalidRequest,
                match=TENANT_MESSAGE,
            ),
            case(
                f"delete_tag[tenant={label}, B/web:v1, force=True]",
                "catalog",
                "delete_tag",
                lambda w, v=variant: ((v(w), w.web, "v1"), {"force": True}),
                InvalidRequest,
                touches=("B.web",),
                match=TENANT_MESSAGE,
            ),
            case(
                f"delete_tag[tenant={label}, library:1.0, force=True]",
                "catalog",
                "delete_tag",
                lambda w, v=variant: ((v(w), w.lib, "1.0"), {"force": True}),
                InvalidRequest,
                touches=("library",),
                match=TENANT_MESSAGE,
            ),
        ]
    return rows


B_DEP_FORMS = {  # B's deployment ID as A might spell it: each the same deployment, so Forbidden
    "id": lambda w: w.b_dep,
    "id-upper": lambda w: w.b_dep.upper(),
    "id-no-hyphens": lambda w: w.b_dep.replace("-", ""),
    "id-braces": lambda w: "{" + w.b_dep + "}",
    "id-urn": lambda w: f"urn:uuid:{w.b_dep}",
}

FORBIDDEN_DEPLOYMENT = r"^deployment [0-9a-f-]{36} belongs to another tenant$"


def deployer_cases():
    rows = [
        case("list_pools[]", "deployer", "list_pools", lambda w: ((), {}), pools),
        case("list_deployments[A]", "deployer", "list_deployments", lambda w: ((w.A,), {}), only_a_deployments),
        case(
            "list_deployments[A, page=2, page_size=1]",
            "deployer",
            "list_deployments",
            lambda w: ((w.A,), {"page": 2, "page_size": 1}),
            empty_page(1),
        ),
        case(
            "list_deployments[None]",
            "deployer",
            "list_deployments",
            lambda w: ((None,), {}),
            InvalidRequest,
            match=r"^tenant_id is required",
        ),
    ]
    # create_deployment with B's images, in every reference form
    images = {
        "B/web:v1": (lambda w: f"{w.B}/web:v1", Forbidden),
        "B/web (latest)": (lambda w: f"{w.B}/web", Forbidden),
        "registry/B/web:v2": (lambda w: f"{w.reg}/{w.B}/web:v2", Forbidden),
        "B/web:old (deleted)": (lambda w: f"{w.B}/web:old", Forbidden),
        "B/web:nosuch": (lambda w: f"{w.B}/web:nosuch", Forbidden),
        "B/nosuch:v1": (lambda w: f"{w.B}/nosuch:v1", Forbidden),
        "B/ownbase:1.0": (lambda w: f"{w.base}:1.0", Forbidden),
        "B/ledger:rel": (lambda w: f"{w.ledger}:{w.rel}", Forbidden),
        "B/web@digest": (lambda w: f"{w.B}/web@{w.d['v1']}", InvalidRequest),
        "registry/B/web@digest": (lambda w: f"{w.reg}/{w.B}/web@{w.d['v2']}", InvalidRequest),
        "B/web:v1@digest": (lambda w: f"{w.B}/web:v1@{w.d['v1']}", InvalidRequest),
        "A/web@B's digest": (lambda w: f"{w.A}/web@{w.d['v1']}", InvalidRequest),
        "B-upper/web:v1": (lambda w: f"{w.B.upper()}/web:v1", InvalidRequest),
        "A/../B/web:v1": (lambda w: f"{w.A}/../{w.B}/web:v1", InvalidRequest),
        "registry/A/../B/web:v1": (lambda w: f"{w.reg}/{w.A}/../{w.B}/web:v1", InvalidRequest),
        "other-registry/B/web:v1": (lambda w: f"registry.example.com/{w.B}/web:v1", InvalidRequest),
    }
    for label, (image, expect) in images.items():
        rows.append(
            case(
                f"create_deployment[A, image={label}]",
                "deployer",
                "create_deployment",
                lambda w, image=image: ((w.A, spec(image=image)(w)), {}),
                expect,
                touches=("deployments",),
                match=r"may not read" if expect is Forbidden else r"^image ",
            )
        )
    rows += [
        case(
            "create_deployment[A, name of B's, host_port of B's instance]",
            "deployer",
            "create_deployment",
            lambda w: (
                (
                    w.A,
                    spec(name="web2", image=lambda w: f"{w.A}/web:v1", ports=lambda w: [{"host_port": w.b_ports[0]}])(
                        w
                    ),
                ),
                {},
            ),
            Conflict,
            touches=("deployments", "B.dep"),
            match=r"host port \d+ already in use",
        ),
        case(
            "create_deployment[None, B/web:v1]",
            "deployer",
            "create_deployment",
            lambda w: ((None, spec(image=lambda w: f"{w.B}/web:v1")(w)), {}),
            InvalidRequest,
            touches=("deployments",),
            match=r"^tenant_id is required",
        ),
    ]
    # Calls on B's deployment by ID: Forbidden, whatever else is wrong with the call
    on_b = {
        "get_deployment": lambda w, d: (w.A, d),
        "list_revisions": lambda w, d: (w.A, d),
        "update_deployment{tag: v1}": lambda w, d: (w.A, d, {"tag": "v1"}),
        "update_deployment{image: B/web:v1}": lambda w, d: (w.A, d, {"image": f"{w.B}/web:v1"}),
        "update_deployment{auto_deploy: force}": lambda w, d: (w.A, d, {"auto_deploy": {"policy": "force"}}),
        "update_deployment{env}": lambda w, d: (w.A, d, {"env": {"STOLEN": "1"}}),
        "update_deployment{unknown field}": lambda w, d: (w.A, d, {"replicas": 9}),
        "set_auto_deploy{force}": lambda w, d: (w.A, d, "force"),
        "set_auto_deploy{not a policy}": lambda w, d: (w.A, d, "sometimes"),
        "scale_deployment{0}": lambda w, d: (w.A, d, 0),
        "scale_deployment{5}": lambda w, d: (w.A, d, 5),
        "scale_deployment{-1}": lambda w, d: (w.A, d, -1),
        "rollback_deployment{}": lambda w, d: (w.A, d),
        "rollback_deployment{revision=1}": lambda w, d: (w.A, d, 1),
        "rollback_deployment{revision=99}": lambda w, d: (w.A, d, 99),
        "delete_deployment": lambda w, d: (w.A, d),
    }
    for label, arguments in on_b.items():
        method = label.split("{")[0]
        rows.append(
            case(
                f"{method}[A, B's deployment{label[len(method) :]}]",
                "deployer",
                method,
                lambda w, a=arguments: (a(w, w.b_dep), {}),
                Forbidden,
                touches=("B.dep",),
                match=FORBIDDEN_DEPLOYMENT,
            )
        )
        rows.append(
            case(
                f"{method}[A, B's deleted deployment{label[len(method) :]}]",
                "deployer",
                method,
                lambda w, a=arguments: (a(w, w.b_gone), {}),
                Forbidden,
                touches=("B.gone",),
                match=FORBIDDEN_DEPLOYMENT,
            )
        )
    for form, deployment_id in B_DEP_FORMS.items():
        if form == "id":
            continue
        for method in ("get_deployment", "delete_deployment"):
            rows.append(
                case(
                    f"{method}[A, B's deployment as {form}]",
                    "deployer",
                    method,
                    lambda w, d=deployment_id: ((w.A, d(w)), {}),
                    Forbidden,
                    touches=("B.dep",),
                    match=FORBIDDEN_DEPLOYMENT,
                )
            )
    rows += [
        case(
            "get_deployment[A, unknown id]",
            "deployer",
            "get_deployment",
            lambda w: ((w.A, str(uuid.uuid4())), {}),
            NotFound,
            match=r"^deployment [0-9a-f-]{36} does not exist$",
        ),
        case(
            "get_deployment[A, B's id prefix]",
            "deployer",
            "get_deployment",
            lambda w: ((w.A, w.b_dep[:8]), {}),
            InvalidRequest,
            match=r"^deployment_id must be a deployment ID",
        ),
        case(
            "get_deployment[A, B's id with a space]",
            "deployer",
            "get_deployment",
            lambda w: ((w.A, f" {w.b_dep}"), {}),
            InvalidRequest,
            match=r"^deployment_id must be a deployment ID",
        ),
        case(
            "get_deployment[None, B's deployment]",
            "deployer",
            "get_deployment",
            lambda w: ((None, w.b_dep), {}),
            InvalidRequest,
            match=r"^tenant_id is required",
        ),
    ]
    # A's own deployment moved onto B's image: refused, and A's deployment left exactly as it was
    own = {
        "image: B/web:v2": ({"image": lambda w: f"{w.B}/web:v2"}, Forbidden),
        "image: registry/B/web:v1": ({"image": lambda w: f"{w.reg}/{w.B}/web:v1"}, Forbidden),
        "image: B/web:v2 + auto_deploy: force": (
            {"image": lambda w: f"{w.B}/web:v2", "auto_deploy": {"policy": "force"}},
            Forbidden,
        ),
        "image: B/web:v2 + env": ({"image": lambda w: f"{w.B}/web:v2", "env": {"X": "1"}}, Forbidden),
        "image: B/ownbase:1.0": ({"image": lambda w: f"{w.base}:1.0"}, Forbidden),
        "image: B/web:nosuch": ({"image": lambda w: f"{w.B}/web:nosuch"}, Forbidden),
        "image: B/web@digest": ({"image": lambda w: f"{w.B}/web@{w.d['v1']}"}, InvalidRequest),
        "tag: ../../B/web:v1": ({"tag": lambda w: f"../../{w.B}/web:v1"}, InvalidRequest),
        "tag: v1@B's digest": ({"tag": lambda w: f"v1@{w.d['v1']}"}, InvalidRequest),
    }
    for label, (changes, expect) in own.items():
        rows.append(
            case(
                f"update_deployment[A, A's deployment, {label}]",
                "deployer",
                "update_deployment",
                lambda w, c=changes: ((w.A, w.a_dep, {k: (v(w) if callable(v) else v) for k, v in c.items()}), {}),
                expect,
                touches=("A.dep", "B.dep"),
                match=r"may not read" if expect is Forbidden else None,
            )
        )
    for label, variant in TENANT_VARIANTS.items():
        rows += [
            case(
                f"create_deployment[tenant={label}, B/web:v1]",
                "deployer",
                "create_deployment",
                lambda w, v=variant: ((v(w), spec(image=lambda w: f"{w.B}/web:v1")(w)), {}),
                InvalidRequest,
                touches=("deployments",),
                match=TENANT_MESSAGE,
            ),
            case(
                f"list_deployments[tenant={label}]",
                "deployer",
                "list_deployments",
                lambda w, v=variant: ((v(w),), {}),
                InvalidRequest,
                match=TENANT_MESSAGE,
            ),
            case(
                f"get_deployment[tenant={label}, B's deployment]",
                "deployer",
                "get_deployment",
                lambda w, v=variant: ((v(w), w.b_dep), {}),
                InvalidRequest,
                match=TENANT_MESSAGE,
            ),
            case(
                f"list_revisions[tenant={label}, B's deployment]",
                "deployer",
                "list_revisions",
                lambda w, v=variant: ((v(w), w.b_dep), {}),
                InvalidRequest,
                match=TENANT_MESSAGE,
            ),
            case(
                f"update_deployment[tenant={label}, B's deployment]",
                "deployer",
                "update_deployment",
                lambda w, v=variant: ((v(w), w.b_dep, {"tag": "v1"}), {}),
                InvalidRequest,
                touches=("B.dep",),
                match=TENANT_MESSAGE,
            ),
            case(
                f"set_auto_deploy[tenant={label}, B's deployment]",
                "deployer",
                "set_auto_deploy",
                lambda w, v=variant: ((v(w), w.b_dep, "force"), {}),
                InvalidRequest,
                touches=("B.dep",),
                match=TENANT_MESSAGE,
            ),
            case(
                f"scale_deployment[tenant={label}, B's deployment]",
                "deployer",
                "scale_deployment",
                lambda w, v=variant: ((v(w), w.b_dep, 0), {}),
                InvalidRequest,
                touches=("B.dep",),
                match=TENANT_MESSAGE,
            ),
            case(
                f"rollback_deployment[tenant={label}, B's deployment]",
                "deployer",
                "rollback_deployment",
                lambda w, v=variant: ((v(w), w.b_dep), {}),
                InvalidRequest,
                touches=("B.dep",),
                match=TENANT_MESSAGE,
            ),
            case(
                f"delete_deployment[tenant={label}, B's deployment]",
                "deployer",
                "delete_deployment",
                lambda w, v=variant: ((v(w), w.b_dep), {}),
                InvalidRequest,
                touches=("B.dep",),
                match=TENANT_MESSAGE,
            ),
        ]
    return rows


def serialized(value):
    return json.dumps(value, sort_keys=True, default=str)


def _uuids(value):
    """The canonical spelling of every UUID in ``value`` (the deployer answers with it)."""
    if isinstance(value, (list, tuple)):
        return [u for item in value for u in _uuids(item)]
    if isinstance(value, dict):
        return [u for item in value.values() for u in _uuids(item)]
    try:
        return [str(uuid.UUID(value))] if isinstance(value, str) else []
    except ValueError:
        return []


def leaks(w, arguments, answer):
    """B's identifiers in ``answer`` that the call's own ``arguments`` did not hold (case-insensitive:
    an echo of ``TB…`` the caller wrote is its own, a ``tb…`` it did not write is a leak; a UUID the
    caller wrote without hyphens is its own in the usual spelling too)."""
    supplied, said = serialized([arguments, _uuids(arguments)]).lower(), answer.lower()
    return [s for s in w.secrets if s.lower() not in supplied and s.lower() in said]


RESULTS = []  # (case id, answer type): the figures printed at the end of the module


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    """Print the matrix's figures (for docs/reliability.md) once the module has run."""
    yield
    if RESULTS:
        refusals = sum(1 for _, answer in RESULTS if answer != "answer")
        kinds = {}
        for _, answer in RESULTS:
            kinds[answer] = kinds.get(answer, 0) + 1
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(
                f"tenant isolation: {len(RESULTS)} RPC x case checks passed: {refusals} refusals "
                f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()) if k != 'answer')}), "
                f"{kinds.get('answer', 0)} answers holding none of B's data"
            )


def run_case(w, c, case_id):
    args, kwargs = c.arguments(w)
    before = {key: w.snapshot(key) for key in c.touches}
    try:
        result = w.rpc(c.service, c.method, *args, **kwargs)
        answer, error = serialized(result), None
    except ImagehubError as exc:
        result, error = None, exc
        answer = f"{type(exc).__name__}: {exc} {serialized(list(exc.args))}"
    assert leaks(w, [args, kwargs], answer) == [], f"B's identifiers leaked to A: {answer}"
    if isinstance(c.expect, type):
        assert error is not None, f"expected {c.expect.__name__}, got an answer: {answer}"
        assert type(error) is c.expect, answer
        if c.match:
            assert re.search(c.match, str(error)), answer
    else:
        assert error is None, answer
        c.expect(w, result)
    for key, value in before.items():
        assert w.snapshot(key) == value, f"{key} changed"
    RESULTS.append((case_id, type(error).__name__ if error else "answer"))


class TestCatalogRpcs:
    @pytest.mark.parametrize("c", catalog_cases())
    def test_as_tenant_a(self, world, c, request):
        run_case(world, c, request.node.callspec.id)


class TestDeployerRpcs:
    @pytest.mark.parametrize("c", deployer_cases())
    def test_as_tenant_a(self, world, c, request):
        run_case(world, c, request.node.callspec.id)


class TestRefusalsSayNothingAboutExistence:
    """The catalogue refuses by namespace: the message for a repository or tag of B's that exists
    is the one for a name that does not, word for word but the name."""

    @pytest.mark.parametrize(
        "method, existing, missing",
        [
            ("get_repository", lambda w: (w.web,), lambda w: (f"{w.B}/nosuch",)),
            ("list_tags", lambda w: (w.base,), lambda w: (f"{w.B}/nosuch_ownbase",)),
            ("get_tag", lambda w: (w.web, "v1"), lambda w: (w.web, "nosuch")),
            ("get_tag", lambda w: (w.web, "old"), lambda w: (w.web, "nosuch")),
            ("list_tag_history", lambda w: (w.web,), lambda w: (f"{w.B}/nosuch",)),
            ("delete_tag", lambda w: (w.ledger, w.rel), lambda w: (w.ledger, "nosuch")),
        ],
        ids=["get_repository", "list_tags", "get_tag", "get_tag[deleted]", "list_tag_history", "delete_tag"],
    )
    def test_same_refusal_for_existing_and_missing(self, world, method, existing, missing):
        def refusal(arguments):
            with pytest.raises(Forbidden) as raised:
                world.catalog(method, world.A, *arguments)
            return str(raised.value)

        first, second = existing(world), missing(world)
        assert refusal(first).replace(first[0], "<repo>") == refusal(second).replace(second[0], "<repo>")

    def test_deployer_refuses_a_live_and_a_deleted_deployment_alike(self, world):
        messages = []
        for deployment_id in (world.b_dep, world.b_gone):
            with pytest.raises(Forbidden) as raised:
                world.deployer("get_deployment", world.A, deployment_id)
            messages.append(str(raised.value).replace(deployment_id, "<id>"))
        assert messages == ["deployment <id> belongs to another tenant"] * 2


class TestOperatorOnlyRpcs:
    """No tenant argument, every tenant's data: a platform component is refused by the broker
    itself; the operator (admin broker user, platform admin's identity) sees it all."""

    @pytest.mark.parametrize("method", ["list_set_aside_events", "list_dead_letters", "resync", "get_resync"])
    def test_a_platform_component_is_refused_by_the_broker(self, world, method):
        with pytest.raises(amqp.exceptions.AccessRefused, match=f"access to topic 'catalog.{method}'"):
            world.catalog(method)

    def test_set_aside_events_and_dead_letters_name_every_tenants_repositories(self, world):
        events = {e["repository"]: e for e in world.operator("list_set_aside_events")["items"]}
        # B's repository names, tags and digests, with the payload as the registry sent it
        assert events[world.nested]["source"] == "webhook"
        assert world.d["nested"] in serialized(events[world.nested])
        [ghost] = [d for e in world.dead_letters() if world.ghost in serialized(d := world.dead_letter(e["id"]))]
        assert (ghost["queue"], ghost["reason"]) == (
            "evt-webhook-image_pushed--catalog.handle_image_pushed",
            "rejected",
        )
        assert world.d["ghost"] in ghost["body"] and ghost["error"].startswith("NotInRegistry:")

    def test_resync_of_b_runs_for_any_caller_and_reports_b_s_catalogue(self, world):
        finished = wait_until(lambda: _resync(world), timeout=WAIT, interval=0.5, what="a resync pass of B")
        assert (finished["namespace"], finished["status"]) == (world.B, "finished")
        # B's size: web, ownbase and ledger, 6 tags (the nested name never reached the registry:
        # the token service refused it, so there is nothing to skip)
        assert (finished["repositories_scanned"], finished["tags_scanned"]) == (3, 6)
        assert finished["skipped"] == []
        assert finished["counts"] == {"added": 0, "moved": 0, "removed": 0, "pending_removal": 0, "skipped": 0}
        again = world.operator("get_resync", finished["pass_id"])
        assert (again["namespace"], again["skipped"]) == (world.B, finished["skipped"])
        assert world.operator("get_resync")["pass_id"] == finished["pass_id"]
        assert world.snapshot("B.web") == world.initial["B.web"]  # in sync: the pass changed nothing


def _resync(world):
    try:
        return world.operator("resync", world.B, wait=True)
    except Conflict:  # another pass runs (none should): wait for it
        return None


class TestSameContentInTwoTenants:
    def test_a_deleting_its_copy_of_b_s_image_leaves_b_s_alone(self, world):
        """The registry stores content once; a manifest delete is per repository. A pushes the very
        image B has in ``B/ledger…`` (same digest) to ``A/copy``, then deletes it: B's tags stay in
        the registry and the catalogue, also once the registry's own delete notifications are handled."""
        copy = f"{world.A}/copy"
        assert world.http_push(copy, "x", world.A, world.ledger_content) == world.d["ledger"]
        engine = sa.create_engine(world.stack.catalog_db)
        try:

            def processed():
                with engine.connect() as conn:
                    return conn.execute(sa.text("SELECT count(*) FROM processed_events")).scalar()

            before = processed()
            deleted = world.delete_own_tag(world.A, copy, "x")
            assert (deleted["digest"], deleted["deleted_tags"]) == (world.d["ledger"], ["x"])
            assert world.registry.tags(copy) == []
            assert world.catalog("list_tags", world.A, copy)["items"] == []
            wait_until(
                lambda: processed() > before,
                timeout=WAIT,
                interval=0.1,
                what="the registry's delete notification handled by the catalog",
            )
        finally:
            engine.dispose()
        assert world.snapshot("B.ledger") == world.initial["B.ledger"]
        fetched = world.registry.manifest(world.ledger, world.d["ledger"])
        assert fetched.status_code == 200


class TestBIsUntouched:
    def test_b_state_after_the_matrix(self, world):
        assert {key: world.snapshot(key) for key in SNAPSHOTS} == world.initial
        deployment = world.deployer("get_deployment", world.B, world.b_dep)
        assert (deployment["status"], deployment["revision"], deployment["replicas"]) == ("running", 2, 2)
        for instance in deployment["instances"]:
            answered = requests.get(f"http://{instance['address']}/", timeout=5).text.strip()
            assert answered == world.markers[world.d["v2"]]
        containers = {}
        for sock in ENGINES:
            out = subprocess.run(
                [
                    "docker",
                    "-H",
                    sock,
                    "ps",
                    "-q",
                    "--no-trunc",
                    "--filter",
                    f"label=imagehub.deployment={world.b_dep}",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.split()
            containers[sock] = out
        assert sorted(c for ids in containers.values() for c in ids) == sorted(
            i["container_id"] for i in deployment["instances"]
        )


class TestAutoDeployStaysInItsTenant:
    @pytest.mark.timeout(180)
    def test_a_push_of_b_web_does_not_move_a_web(self, world):
        """A's ``web`` follows ``semver:minor`` on ``A/web:v1``; B pushes ``B/web:v1.1`` (same name,
        a tag the policy wants): A stays. A's own ``v1.1`` then moves it (the policy does follow)."""
        A, B = world.A, world.B
        before = world.deployer("get_deployment", A, world.a_dep)
        b_digest = world.http_push(world.web, "v1.1", B, f"b v1.1 {hex_id()}".encode())
        log = world.stack.services["deployer"].log
        decided = wait_until(
            lambda: [
                line for line in log().splitlines() if f"({world.web}:v1.1 -> " in line and " deployment " in line
            ],
            timeout=WAIT,
            interval=0.1,
            what="the deployer's decisions on B/web:v1.1",
        )
        assert [line.split(" deployment ")[1].split()[0] for line in decided] == [world.b_dep]
        assert f"deployment {world.b_dep} stays" in decided[0]
        after = world.deployer("get_deployment", A, world.a_dep)
        assert _deployment(after) == _deployment(before)
        assert after["pending_push"] is None

        _, a_digest = world.build_and_push(world.a_web, "v1.1", A)
        moved = wait_until(
            lambda: (
                lambda d: (
                    d if d["status"] == "running" and d["operation"] is None and d["serving_revision"] == 2 else None
                )
            )(world.deployer("get_deployment", A, world.a_dep)),
            timeout=WAIT,
            interval=0.2,
            what="A's web on v1.1",
        )
        assert (moved["serving_image"], moved["serving_digest"]) == (f"{world.a_web}:v1.1", a_digest)
        revisions = world.deployer("list_revisions", A, world.a_dep)["items"]
        assert [(r["revision"], r["image"], r["trigger"]) for r in revisions] == [
            (2, f"{world.a_web}:v1.1", "auto-deploy"),
            (1, f"{world.a_web}:v1", "create"),
        ]
        assert b_digest not in serialized(revisions) and b_digest not in serialized(moved)
        assert leaks(world, [], serialized([moved, revisions])) == []
        # Every decision on B's push was logged in one go, long before A's push: still B's deployment only.
        assert [
            line.split(" deployment ")[1].split()[0]
            for line in log().splitlines()
            if f"({world.web}:v1.1 -> " in line and " deployment " in line
        ] == [world.b_dep]
        b_after = world.deployer("get_deployment", B, world.b_dep)
        assert (b_after["revision"], b_after["serving_digest"], b_after["status"]) == (2, world.d["v2"], "running")
