"""The library mirror's logic: tag selection, source arguments, skopeo's command lines, and a
sync's decisions (copy, unchanged, retry with back-off, fail, remove, keep) with skopeo and the
registry faked. The real copies are tests/e2e/test_library_mirror.py's."""

import json
import os
import stat
import sys
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from catalog.mirror import sources, sync
from catalog.mirror.schemas import SourceIn
from catalog.mirror.selection import RangeError, parse_range, select_tags
from catalog.mirror.skopeo import Endpoint, Skopeo, SkopeoError
from shared.contracts.errors import Conflict, InvalidRequest
from shared.contracts.schemas import load_args
from tests.unit.catalog.conftest import T0, at

UPSTREAM = ["latest", "stable", "1.24", "1.25.3", "1.25.3-alpine", "1.26", "v1.27.1", "2.0", "edge"]


class TestSelection:
    @pytest.mark.parametrize(
        ("selectors", "expected"),
        [
            ({"tags": ["latest", "gone"]}, ["latest"]),
            ({"versions": ">=1.25, <2"}, ["1.25.3", "1.25.3-alpine", "1.26", "v1.27.1"]),
            ({"versions": ">=1.25 <2", "newest": 2}, ["1.26", "v1.27.1"]),
            ({"versions": "~1.25"}, ["1.25.3", "1.25.3-alpine"]),
            ({"versions": "^1.26"}, ["1.26", "v1.27.1"]),
            ({"versions": "=2"}, ["2.0"]),
            ({"pattern": "*-alpine"}, ["1.25.3-alpine"]),
            ({"newest": 1}, ["2.0"]),
            ({"tags": ["edge"], "pattern": "1.2?", "newest": 1}, ["1.26", "edge"]),
        ],
    )
    def test_the_union_of_exact_tags_and_the_rule(self, selectors, expected):
        assert select_tags(UPSTREAM, **selectors) == expected

    @pytest.mark.parametrize("text", ["", ">=", "1.x", ">=1.2.3.4", "latest"])
    def test_a_range_that_does_not_parse_says_which_part(self, text):
        with pytest.raises(RangeError):
            parse_range(text)


class TestSourceArguments:
    def test_defaults(self):
        values = load_args(SourceIn, name="web", registry="docker.io", repository="library/nginx", tags=["1"])
        assert {k: values[k] for k in ("enabled", "follow_removals", "insecure", "credential", "newest")} == {
            "enabled": True,
            "follow_removals": False,
            "insecure": False,
            "credential": None,
            "newest": None,
        }

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"registry": "https://docker.io"}, "registry"),
            ({"registry": "127.0.0.1:70000"}, "registry"),
            ({"repository": "library//nginx"}, "repository"),
            ({"tags": []}, "tags"),
            ({"tags": "latest"}, "tags"),
            ({"versions": ">=one"}, "versions"),
            ({"newest": 1001}, "newest"),
            ({"newest": "3"}, "newest"),
            ({"pattern": "../x"}, "pattern"),
            ({"enabled": "yes"}, "enabled"),
            ({"credential": "a b"}, "credential"),
        ],
    )
    def test_each_bad_argument_is_named(self, changes, field):
        arguments = {"name": "web", "registry": "docker.io", "repository": "library/nginx", "tags": ["1"], **changes}
        with pytest.raises(InvalidRequest, match=rf"^{field}\b"):
            load_args(SourceIn, **arguments)


def fake_skopeo(tmp_path, script):
    path = tmp_path / "skopeo"
    path.write_text(f"#!{sys.executable}\n{script}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


class TestSkopeo:
    def test_credentials_stay_off_the_command_line_in_a_private_file(self, tmp_path):
        record = tmp_path / "argv.json"
        command = fake_skopeo(
            tmp_path,
            "import json, os, sys\n"
            "authfile = sys.argv[sys.argv.index('--authfile') + 1]\n"
            f"json.dump({{'argv': sys.argv[1:], 'auth': json.load(open(authfile)),"
            f" 'mode': oct(os.stat(authfile).st_mode & 0o777)}}, open({str(record)!r}, 'w'))\n",
        )
        endpoints = [Endpoint("127.0.0.1:5000", True, "robot", "s3cret"), Endpoint("docker.io")]
        with Skopeo(endpoints, command) as skopeo:
            skopeo.copy(
                ("docker.io", "library/nginx", "sha256:" + "a" * 64), ("127.0.0.1:5000", "library/nginx", "1.0")
            )
            private_dir = skopeo._dir
        seen = json.loads(record.read_text())
        assert "s3cret" not in " ".join(seen["argv"])
        assert seen["argv"][2:] == [
            "copy",
            "--authfile",
            seen["argv"][4],
            "--all",
            "--preserve-digests",
            "--retry-times",
            "0",
            "--dest-tls-verify=false",
            "docker://docker.io/library/nginx@sha256:" + "a" * 64,
            "docker://127.0.0.1:5000/library/nginx:1.0",
        ]
        assert seen["auth"] == {"auths": {"127.0.0.1:5000": {"auth": "cm9ib3Q6czNjcmV0"}}}  # robot:s3cret
        assert seen["mode"] == "0o600"
        assert not os.path.exists(private_dir)

    def test_a_refresh_token_is_given_as_the_identity_token(self, tmp_path):
        record = tmp_path / "auth.json"
        command = fake_skopeo(
            tmp_path,
            "import shutil, sys\n"
            f"shutil.copy(sys.argv[sys.argv.index('--authfile') + 1], {str(record)!r})\n"
            "print('{\"Tags\": []}')\n",
        )
        with Skopeo([Endpoint("127.0.0.1:5000", True, "robot", "s3cret", identity_token="refresh-1")], command) as s:
            s.list_tags("127.0.0.1:5000", "library/nginx")
        entry = json.loads(record.read_text())["auths"]["127.0.0.1:5000"]
        assert entry == {"auth": "PHRva2VuPjo=", "identitytoken": "refresh-1"}  # "<token>:", no password

    def test_a_failure_carries_skopeos_last_words(self, tmp_path):
        command = fake_skopeo(
            tmp_path, "import sys\nprint('time=x level=fatal msg=\"manifest unknown\"', file=sys.stderr)\nsys.exit(1)\n"
        )
        with Skopeo([], command) as skopeo, pytest.raises(SkopeoError, match="list-tags failed: .*manifest unknown"):
            skopeo.list_tags("docker.io", "library/nginx")

    def test_a_missing_skopeo_is_named(self, tmp_path):
        with Skopeo([], str(tmp_path / "nowhere")) as skopeo, pytest.raises(SkopeoError, match="not installed"):
            skopeo.list_tags("docker.io", "library/nginx")


class FakeSkopeo:
    """Stands in for ``Skopeo``: an upstream in memory, copying into the fake registry; ``fail``
    maps a tag to how many of its next steps raise."""

    def __init__(self, registry, upstream):
        self.registry, self.upstream = registry, upstream
        self.fail = {}
        self.copies = []

    def __call__(self, endpoints, command, **limits):
        self.endpoints = endpoints
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def list_tags(self, host, repository):
        return sorted(self.upstream)

    def digest(self, host, repository, tag):
        if self.fail.get(tag):
            self.fail[tag] -= 1
            raise SkopeoError(f"skopeo inspect failed: {tag} unreachable")
        return self.upstream[tag]

    def copy(self, source, dest):
        _, _, digest = source
        _, repository, tag = dest
        self.copies.append(tag)
        self.registry.manifests[repository, digest] = ("application/json", b"{}")
        self.registry.tags.setdefault(repository, {})[tag] = digest


def digest(n):
    return f"sha256:{n:064x}"


class TestSyncRun:
    def run(self, session, registry, fake, source="web", sleeps=None, **selectors):
        def transaction(work):
            result = work(session)
            session.commit()
            return result

        if sources.list_sources(session) == []:
            values = load_args(
                SourceIn,
                name=source,
                registry="up.example:5000",
                repository="team/web",
                **(selectors or {"tags": ["1"]}),
            )
            sources.set_source(session, values, "admin", T0)
            session.commit()
        sync_id = sync.start_sync(session, source, sync.RPC, now=at(len(fake.copies) + 1))
        session.commit()
        settings = sync.MirrorSettings("http://127.0.0.1:5000", None, "", None, attempts=3, retry_delay=0.5)
        sync.SyncRun(
            sync_id,
            transaction,
            registry,
            settings,
            lambda outgoing: None,
            sleep=(sleeps if sleeps is not None else []).append,
            skopeo=fake,
        ).run()
        report = sync.get_sync(session, sync_id)
        return report, {item["tag"]: (item["status"], item["attempts"]) for item in report["items"]}

    def test_copies_what_differs_then_nothing(self, session: Session, registry):
        fake = FakeSkopeo(registry, {"1.0": digest(1), "1.1": digest(2), "dev": digest(3)})
        registry.tags["library/web"] = {"1.0": digest(1)}  # already there
        _, items = self.run(session, registry, fake, versions=">=1")
        assert items == {"1.0": ("unchanged", 1), "1.1": ("copied", 1)}
        assert fake.copies == ["1.1"]
        _, items = self.run(session, registry, fake, versions=">=1")
        assert items == {"1.0": ("unchanged", 1), "1.1": ("unchanged", 1)} and fake.copies == ["1.1"]

    def test_a_failing_tag_is_retried_with_back_off_then_failed_and_the_others_go_on(self, session, registry):
        fake = FakeSkopeo(registry, {"1.0": digest(1), "1.1": digest(2), "1.2": digest(3)})
        fake.fail = {"1.0": 1, "1.1": 5}
        sleeps = []
        report, items = self.run(session, registry, fake, sleeps=sleeps, versions=">=1")
        assert items == {"1.0": ("copied", 2), "1.1": ("failed", 3), "1.2": ("copied", 1)}
        assert sorted(sleeps) == [0.5, 0.5, 1.0]  # 1.0 once; 1.1 twice, doubled
        assert report["status"] == "finished" and report["counts"]["failed"] == 1
        assert "1.1 unreachable" in next(i["error"] for i in report["items"] if i["tag"] == "1.1")
        assert "1.1" not in registry.tags["library/web"]

    def test_a_tag_gone_upstream_is_kept_unless_removals_are_followed(self, session, registry):
        fake = FakeSkopeo(registry, {"1.0": digest(1), "2.0": digest(2)})
        self.run(session, registry, fake, tags=["1.0", "2.0"])
        del fake.upstream["1.0"]
        _, items = self.run(session, registry, fake, tags=["1.0", "2.0"])
        assert items == {"2.0": ("unchanged", 1), "1.0": ("kept", 1)}
        assert registry.tags["library/web"] == {"1.0": digest(1), "2.0": digest(2)}

        values = load_args(
            SourceIn,
            name="web",
            registry="up.example:5000",
            repository="team/web",
            tags=["1.0", "2.0"],
            follow_removals=True,
        )
        sources.set_source(session, values, "admin", T0)
        session.commit()
        _, items = self.run(session, registry, fake)
        assert items == {"2.0": ("unchanged", 1), "1.0": ("removed", 1)}
        assert registry.tags["library/web"] == {"2.0": digest(2)}
        assert registry.deleted == [("library/web", digest(1))]

    def test_one_sync_at_a_time(self, session, registry):
        values = load_args(SourceIn, name="web", registry="up.example:5000", repository="team/web", tags=["1"])
        sources.set_source(session, values, "admin", T0)
        first = sync.start_sync(session, None, sync.RPC, now=T0)
        session.commit()
        with pytest.raises(Conflict, match=f"library sync {first} "):
            sync.start_sync(session, None, sync.RPC, now=at(10))
        # Silent past the stale limit (its process died): taken over, and marked abandoned.
        second = sync.start_sync(session, None, sync.RPC, now=T0 + sync.LOCK_STALE_AFTER + timedelta(seconds=1))
        session.commit()
        assert sync.get_sync(session, first)["status"] == "abandoned" and second == first + 1


class TestSeeding:
    def test_the_file_seeds_once_and_a_bad_entry_is_left_out(self, session, tmp_path):
        seed = tmp_path / "sources.yml"
        seed.write_text(
            "web: {registry: docker.io, repository: library/nginx, tags: [latest]}\n"
            "bad: {registry: 'http://x', repository: library/x, tags: [latest]}\n"
        )
        assert sources.ensure_seeded(session, str(seed), T0) == 1
        sources.remove_source(session, "web")
        assert sources.ensure_seeded(session, str(seed), at(1)) == 0  # not again: removed stays removed
        assert sources.list_sources(session) == []
