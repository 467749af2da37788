"""The registry client keeps manifests and image configs by repository and digest for a while:
fetched once, bounded, forgotten on our own delete and after the time limit."""

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


def test_a_manifest_is_fetched_once_per_repository():
    body = b'{"schemaVersion": 2}'
    session = Session({digest_of(body): body})
    client = RegistryClient(session, "http://registry", 5)

    first = client.get_manifest("t1/a", digest_of(body))
    again = client.get_manifest("t1/a", digest_of(body))
    elsewhere = client.get_manifest("t2/b", digest_of(body))  # the registry judges each repository

    assert first == again == elsewhere == ("application/vnd.docker.distribution.manifest.v2+json", body)
    assert [url.split("/v2/")[1].split("/manifests")[0] for _, url in session.requests] == ["t1/a", "t2/b"]


def test_our_delete_and_the_time_limit_forget_a_manifest():
    body = b'{"schemaVersion": 2, "n": 1}'
    session = Session({digest_of(body): body})
    now = [100.0]
    client = RegistryClient(session, "http://registry", 5, cache=DigestCache(ttl=60, clock=lambda: now[0]))

    client.get_manifest("t1/a", digest_of(body))
    client.delete_manifest("t1/a", digest_of(body))
    client.get_manifest("t1/a", digest_of(body))  # asked again: it may be gone
    now[0] += 59.9
    client.get_manifest("t1/a", digest_of(body))  # still within the limit: kept
    now[0] += 0.2
    client.get_manifest("t1/a", digest_of(body))  # past it: asked again

    assert [method for method, _ in session.requests] == ["GET", "DELETE", "GET", "GET"]
    assert client.cache.size == len(body) + CACHE_ENTRY_OVERHEAD


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
        cache.put("blob", "t1/a", digest_of(body), None, body)
    assert cache.get("blob", "t1/a", digest_of(b"aaaaa")) is not None  # a used: b is now the oldest
    cache.put("blob", "t1/a", digest_of(b"ccccc"), None, b"ccccc")
    cache.put("blob", "t1/a", digest_of(b"ddddddd"), None, b"ddddddd")  # larger than an item may be

    assert [cache.get("blob", "t1/a", digest_of(b)) is not None for b in bodies] == [True, False, True, False]
    assert cache.size == 10 + 2 * CACHE_ENTRY_OVERHEAD


def test_a_tag_read_with_its_manifest_is_not_fetched_again_by_digest():
    body = b'{"schemaVersion": 2, "tag": "v1"}'
    session = Session({"v1": body})
    client = RegistryClient(session, "http://registry", 5)

    digest = client.tag_digest("t1/a", "v1", manifest=True)

    assert digest == digest_of(body)
    assert client.get_manifest("t1/a", digest)[1] == body
    assert session.requests == [("GET", "http://registry/v2/t1/a/manifests/v1")]
