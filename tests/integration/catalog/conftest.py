"""The catalog service in a nameko container on the real broker, database and registry.

Events are sent the way the webhook sends them (``event_dispatcher``, source ``webhook``); an
observer service records what the catalog dispatches; RPC goes through ``ServiceRpcProxy``.
"""

import contextlib
import os
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from catalog.migrate import upgrade
from catalog.service import CatalogService
from shared.contracts.events import (
    CATALOG,
    EVENT_SET_ASIDE,
    IMAGE_DELETED,
    IMAGE_PUSHED,
    TAG_INDEXED,
    TAG_REMOVED,
    WEBHOOK,
    ImageDeleted,
    ImagePushed,
    make_event,
)
from shared.runtime.db import load_config
from shared.runtime.identity import IDENTITY_KEY, IdentifiedServiceRpcProxy, identity_audience
from tests.support import DOCKER_MANIFEST_V2, push_image, wait_until
from tests.unit.auth.certificates import certificate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

HANDLERS = {
    IMAGE_PUSHED: "handle_image_pushed",
    IMAGE_DELETED: "handle_image_deleted",
    EVENT_SET_ASIDE: "handle_event_set_aside",
}
AS_PUSHED = object()  # the tag the image was pushed with
WAIT = 15  # seconds: generous for a loaded machine, well inside pytest-timeout
# A fixed creation time: the same content then gives the same digest (push_image's default,
# "now", changes the image config whenever the second ticks over between two pushes).
CREATED = "2025-01-02T03:04:05Z"


@pytest.fixture
def catalog_db_url(db_url):
    """The test database, built by the migration (so the migration runs on both databases)."""
    upgrade(db_url)
    return db_url


@pytest.fixture(scope="module")
def registry(registry_factory):
    return registry_factory()


@pytest.fixture
def tenant():
    return "t" + uuid.uuid4().hex[:10]


# Developer identities as the auth service signs them, checked by the catalog against this key's
# certificate (AUTH_CERT_FILE): what a call made on behalf of a person carries.
ISSUER = "imagehub-auth"
IDENTITY_KEY_PAIR = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def auth_cert_file(tmp_path_factory):
    now = datetime.now(UTC)
    path = tmp_path_factory.mktemp("auth") / "auth.crt"
    path.write_bytes(
        certificate(IDENTITY_KEY_PAIR, not_before=now - timedelta(days=1), not_after=now + timedelta(days=1))
    )
    return str(path)


def developer_identity(account, tenant, admin=False):
    """A developer's identity token, signed now, valid five minutes."""
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": identity_audience(ISSUER),
        "token_use": "identity",
        "sub": account,
        "tenant": tenant,
        "admin": admin,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    return jwt.encode(claims, IDENTITY_KEY_PAIR, algorithm="ES256")


@pytest.fixture
def as_developer(catalog, rabbit_config):
    """``as_developer(account, tenant, admin=False)``: a catalog proxy whose calls carry that
    developer's identity (the proxies close with the test)."""
    with contextlib.ExitStack() as stack:

        def proxy(account, tenant, admin=False):
            context = {IDENTITY_KEY: developer_identity(account, tenant, admin)}
            return stack.enter_context(
                IdentifiedServiceRpcProxy("catalog", rabbit_config, context_data=context, timeout=WAIT)
            )

        yield proxy


@pytest.fixture
def catalog_config(rabbit_config, catalog_db_url, registry, auth_cert_file):
    """The catalog's config.yml (its defaults, the only ones), on this test's broker, database and
    registry."""
    return dict(
        load_config(os.path.join(ROOT, "services", "catalog", "config.yml")),
        **rabbit_config,
        DB_URIS={"catalog:Base": catalog_db_url},
        REGISTRY_URL=registry.url,
        REGISTRY_PUBLIC_HOST=registry.host,
        REGISTRY_TIMEOUT=5,
        AUTH_CERT_FILE=auth_cert_file,
        AUTH_ISSUER=ISSUER,
        max_workers=4,
        OUTBOX_RELAY_INTERVAL=0.5,
        OUTBOX_RELAY_MIN_AGE=2,
        # passes only when a test asks for one, listing small pages (several per listing)
        RESYNC_INTERVAL=0,
        RESYNC_PAGE_SIZE=25,
    )


class Observed:
    """What the catalog dispatched, in arrival order: ``[(event_type, payload)]``."""

    def __init__(self):
        self.events = []

    def of(self, event_type):
        return [payload for kind, payload in self.events if kind == event_type]

    def wait_for(self, event_type, count=1):
        return wait_until(
            lambda: len(self.of(event_type)) >= count and self.of(event_type),
            timeout=WAIT,
            what=f"{count} {event_type} event(s)",
        )


@pytest.fixture
def observed(container_factory, rabbit_config):
    """Started before the catalog so that its queues exist before anything is dispatched."""
    observed = Observed()

    class Observer:
        name = "observer"

        @event_handler(CATALOG, TAG_INDEXED)
        def on_tag_indexed(self, payload):
            observed.events.append((TAG_INDEXED, payload))

        @event_handler(CATALOG, TAG_REMOVED)
        def on_tag_removed(self, payload):
            observed.events.append((TAG_REMOVED, payload))

    container = container_factory(Observer, dict(rabbit_config, max_workers=1))
    container.start()
    return observed


@pytest.fixture
def catalog(container_factory, catalog_config, observed):
    """The catalog, stopped by this fixture's own teardown: pytest tears fixtures down in the
    reverse order of their set-up, and ``container_factory`` was set up before the test's database
    (``catalog_config``), so its teardown would come after the database was dropped, with a worker
    (a resync pass, the outbox relay) still writing into it (a deadlock on PostgreSQL)."""
    container = container_factory(CatalogService, catalog_config)
    container.start()
    yield container
    container.stop()


@pytest.fixture
def rpc(catalog, rabbit_config):
    with IdentifiedServiceRpcProxy("catalog", rabbit_config, timeout=WAIT) as proxy:
        yield proxy


class Webhook:
    """Sends events as the webhook does and waits until the catalog has handled each one."""

    def __init__(self, container, config):
        self.container = container
        self.dispatch = event_dispatcher(config)

    def send(self, event_type, payload, timeout=WAIT):
        """Dispatch and wait for the catalog's worker for this event; its error is raised here."""

        def this_event(worker_ctx, result, exc_info):
            taken = worker_ctx.args[0]  # a batch handler's: the payloads of its batch
            return payload in taken if isinstance(taken, list) else taken == payload

        with entrypoint_waiter(self.container, HANDLERS[event_type], callback=this_event, timeout=timeout) as got:
            self.dispatch(WEBHOOK, event_type, payload)
        result = got.get()
        taken = got.worker_ctx.args[0]
        if isinstance(taken, list):  # one outcome per payload: None, or what this one failed with
            outcome = result[taken.index(payload)]
            if outcome is not None:
                raise outcome
            return None
        return result

    def pushed(self, image, tag=AS_PUSHED, actor=None, **overrides):
        """An ``image_pushed`` payload for what ``tests.support.push_image`` returned."""
        repository = image["repository"]
        values = dict(
            namespace=repository.split("/")[0],
            repository=repository,
            tag=image["tag"] if tag is AS_PUSHED else tag,
            digest=image["digest"],
            media_type=image.get("media_type", DOCKER_MANIFEST_V2),
            size=image["size"],
            actor=actor,
            request_id=str(uuid.uuid4()),
            source_event_id=str(uuid.uuid4()),
            pushed_at=datetime.now(UTC).isoformat(),
        )
        values.update(overrides)
        return make_event(ImagePushed, **values)

    def push(self, image, tag=AS_PUSHED, actor=None, **overrides):
        payload = self.pushed(image, tag, actor, **overrides)
        self.send(IMAGE_PUSHED, payload)
        return payload

    def delete(self, repository, digest=None, tag=None, **overrides):
        payload = make_event(
            ImageDeleted,
            namespace=repository.split("/")[0],
            repository=repository,
            digest=digest,
            tag=tag,
            source_event_id=str(uuid.uuid4()),
            **overrides,
        )
        self.send(IMAGE_DELETED, payload)
        return payload


@pytest.fixture
def webhook(catalog, rabbit_config):
    return Webhook(catalog, rabbit_config)


@pytest.fixture
def app(registry, webhook, tenant):
    """``<tenant>/app`` indexed: v1 and stable on digest A, v2 on digest B; returns (repository, A, B)."""
    repository = f"{tenant}/app"
    a = push_image(registry.url, repository, "v1", content=b"a" + tenant.encode(), created=CREATED)
    webhook.push(a)
    same = push_image(registry.url, repository, "stable", content=b"a" + tenant.encode(), created=CREATED)
    assert same["digest"] == a["digest"]
    webhook.push(same)
    b = push_image(registry.url, repository, "v2", content=b"b" + tenant.encode(), created=CREATED)
    webhook.push(b)
    return repository, a["digest"], b["digest"]
