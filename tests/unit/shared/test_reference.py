import pytest

from shared.contracts.errors import InvalidReference
from shared.contracts.reference import parse_reference, parse_repository, pull_command

DIGEST = "sha256:" + "ab" * 32


class TestValidReferences:
    @pytest.mark.parametrize(
        "reference, expected",
        [
            ("727524/nginx:v1", dict(registry=None, namespace="727524", name="nginx", tag="v1", digest=None)),
            (
                "dockerhub.yonyoucloud.com/727524/nginx:v1",
                dict(registry="dockerhub.yonyoucloud.com", namespace="727524", name="nginx", tag="v1", digest=None),
            ),
            (
                "127.0.0.1:5000/library/nginx",
                dict(registry="127.0.0.1:5000", namespace="library", name="nginx", tag="latest", digest=None),
            ),
            (
                "localhost/t1/app:1.0.0-rc.1",
                dict(registry="localhost", namespace="t1", name="app", tag="1.0.0-rc.1", digest=None),
            ),
            (
                "localhost:5000/t1/my-app__x.y:Latest_1",
                dict(registry="localhost:5000", namespace="t1", name="my-app__x.y", tag="Latest_1", digest=None),
            ),
            (f"t1/app@{DIGEST}", dict(registry=None, namespace="t1", name="app", tag=None, digest=DIGEST)),
            (
                f"reg.example:443/t1/app:v2@{DIGEST}",
                dict(registry="reg.example:443", namespace="t1", name="app", tag="v2", digest=DIGEST),
            ),
            ("t1/a---b:" + "x" * 128, dict(registry=None, namespace="t1", name="a---b", tag="x" * 128, digest=None)),
        ],
    )
    def test_parts_are_split(self, reference, expected):
        ref = parse_reference(reference)
        assert (ref.registry, ref.namespace, ref.name, ref.tag, ref.digest) == (
            expected["registry"],
            expected["namespace"],
            expected["name"],
            expected["tag"],
            expected["digest"],
        )

    def test_ownbase_suffix_marks_a_custom_base_image(self):
        ref = parse_reference("reg.example/727524/java_ownbase:1.0")
        assert ref.is_ownbase is True
        assert ref.is_public is False
        assert ref.to_dict() == {
            "registry": "reg.example",
            "namespace": "727524",
            "name": "java_ownbase",
            "tag": "1.0",
            "digest": None,
            "repository": "727524/java_ownbase",
            "is_ownbase": True,
            "is_public": False,
        }

    def test_library_namespace_is_public(self):
        ref = parse_reference("library/nginx:latest")
        assert ref.is_public is True
        assert ref.is_ownbase is False

    def test_ownbase_is_only_a_suffix(self):
        assert parse_reference("t1/ownbase_java:1").is_ownbase is False
        assert parse_reference("t1/java_ownbase2:1").is_ownbase is False


class TestInvalidReferences:
    @pytest.mark.parametrize(
        "reference, rule",
        [
            ("", "empty"),
            (" t1/app:v1", "white space"),
            ("T1/app:v1", "lower-case"),
            ("t1/App:v1", "lower-case"),
            ("app:v1", "'<namespace>/<name>'"),
            ("t1/group/app:v1", "found 3 path component"),
            ("reg.example/app", "found 1 path component"),
            ("t1/-app:v1", "must start and end"),
            ("t1/app-:v1", "must start and end"),
            ("t1/a..b:v1", "separated by single"),
            ("t1/a___b:v1", "separated by single"),
            ("t1//app:v1", "empty path component"),
            ("/app:v1", "empty path component"),
            ("t1/app:", "tag ''"),
            ("t1/app:.v1", "not starting with"),
            ("t1/app:-v1", "not starting with"),
            ("t1/app:" + "x" * 129, "1-128 characters"),
            ("t1/app:v 1", "tag"),
            ("t1/app@sha256:abc", "64 lower-case hex"),
            ("t1/app@md5:" + "a" * 32, "must be 'sha256:'"),
            ("bad_host.example:99999x/t1/app", "not a valid host"),
            ("t1/" + "a" * 260, "longer than 255"),
        ],
    )
    def test_message_names_the_rule(self, reference, rule):
        with pytest.raises(InvalidReference) as exc:
            parse_reference(reference)
        assert rule in str(exc.value)

    @pytest.mark.parametrize("value", [None, 42, ["t1/app"]])
    def test_non_strings_are_refused(self, value):
        with pytest.raises(InvalidReference):
            parse_reference(value)


class TestRepository:
    def test_split(self):
        assert parse_repository("727524/nginx") == ("727524", "nginx")

    def test_three_components_refused(self):
        with pytest.raises(InvalidReference, match="found 3"):
            parse_repository("a/b/c")


def test_pull_command_uses_the_given_registry_host():
    assert (
        pull_command("hub.example.com", "library/nginx", "latest") == "docker pull hub.example.com/library/nginx:latest"
    )
    assert pull_command("hub.example.com", "t1/app", digest=DIGEST) == f"docker pull hub.example.com/t1/app@{DIGEST}"
