"""The registry client keeps manifests and image configs by digest: fetched once, bounded."""

import hashlib

from catalog.dependencies import CACHE_ENTRY_OVERHEAD, DigestCache, RegistryClient


def digest_of(body):
    return "sha256:" + hashlib.sha256(body).hexdigest()


class Answer:
    def __init__(self, body):
        self.status_code = 200
        self.content = body
        self.headers = {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}
        self.headers["Docker-Content-Digest"] = digest_of(body)
        self.text = body.decode()


class Session:
    """Stands in for a requests session: answers every GET with ``bodies[url's last part]``."""

    def __init__(self, bodies):
        self.bodies = bodies
        self.requests = []

    def request(self, method, url, **kwargs):
        self.requests.append((method, url))
        return Answer(self.bodies[url.rsplit("/", 1)[1]])


def test_a_manifest_is_fetched_once_by_digest_whatever_the_repository():
    body = b'{"schemaVersion": 2}'
    session = Session({digest_of(body): body})
    client = RegistryClient(session, "http://registry", 5)

    first = client.get_manifest("t1/a", digest_of(body))
    again = client.get_manifest("t1/b", digest_of(body))

    assert first == again == ("application/vnd.docker.distribution.manifest.v2+json", body)
    assert len(session.requests) == 1


def test_content_that_is_not_what_its_digest_names_is_not_kept():
    wrong = "sha256:" + "0" * 64
    session = Session({wrong: b"{}"})
    client = RegistryClient(session, "http://registry", 5)

    client.get_manifest("t1/a", wrong)
    client.get_manifest("t1/a", wrong)

    assert len(session.requests) == 2


def test_the_cache_drops_the_least_recently_used_past_its_size():
    cache = DigestCache(max_bytes=10 + 2 * CACHE_ENTRY_OVERHEAD, max_item_bytes=6)
    bodies = [b"aaaaa", b"bbbbb", b"ccccc", b"ddddddd"]
    for body in bodies[:2]:
        cache.put("blob", digest_of(body), None, body)
    assert cache.get("blob", digest_of(b"aaaaa")) is not None  # a used: b is now the oldest
    cache.put("blob", digest_of(b"ccccc"), None, b"ccccc")
    cache.put("blob", digest_of(b"ddddddd"), None, b"ddddddd")  # larger than an item may be

    assert [cache.get("blob", digest_of(b)) is not None for b in bodies] == [True, False, True, False]
    assert cache.size == 10 + 2 * CACHE_ENTRY_OVERHEAD


def test_a_tag_read_with_its_manifest_is_not_fetched_again_by_digest():
    body = b'{"schemaVersion": 2, "tag": "v1"}'
    session = Session({"v1": body})
    client = RegistryClient(session, "http://registry", 5)

    digest = client.tag_digest("t1/a", "v1", manifest=True)

    assert digest == digest_of(body)
    assert client.get_manifest("t1/a", digest)[1] == body
    assert session.requests == [("GET", "http://registry/v2/t1/a/manifests/v1")]
