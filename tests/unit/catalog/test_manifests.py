"""Reading manifests, indexes and image configs."""

import json

import pytest

from catalog.exceptions import UnusableManifest
from catalog.manifests import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, parse_image_config, parse_manifest, parse_time

D = "sha256:" + "1" * 64
L = "sha256:" + "2" * 64


def body(data):
    return json.dumps(data).encode()


class TestImageManifest:
    def test_size_is_config_plus_layers(self):
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 100},
            "layers": [{"digest": L, "size": 1000}, {"digest": D, "size": 10}],
        }
        parsed = parse_manifest(OCI_MANIFEST, body(manifest))
        assert (parsed.size, parsed.config.digest, [x.digest for x in parsed.layers]) == (1110, D, [L, D])
        assert parsed.wants_config and not parsed.is_index

    def test_an_artifact_config_is_not_fetched(self):
        manifest = {
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": D, "size": 1},
            "layers": [],
        }
        assert not parse_manifest(OCI_MANIFEST, body(manifest)).wants_config

    @pytest.mark.parametrize(
        "content_type, data, message",
        [
            (DOCKER_MANIFEST, b"{not json", "not JSON"),
            (DOCKER_MANIFEST, b"[]", "not a JSON object"),
            ("application/vnd.docker.distribution.manifest.v1+prettyjws", b'{"schemaVersion": 1}', "media type"),
            (DOCKER_MANIFEST, body({"schemaVersion": 2, "config": {"digest": D, "size": 1}}), "layers"),
            (DOCKER_MANIFEST, body({"schemaVersion": 2, "layers": []}), "config has no digest"),
            (DOCKER_MANIFEST, body({"schemaVersion": 2, "config": {"digest": D, "size": -1}, "layers": []}), "size"),
            (DOCKER_MANIFEST, body({"schemaVersion": 3, "layers": []}), "schemaVersion"),
        ],
    )
    def test_unreadable_manifests_say_why(self, content_type, data, message):
        with pytest.raises(UnusableManifest, match=message):
            parse_manifest(content_type, data)


class TestIndex:
    def test_platforms_skip_attestations(self):
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"digest": D, "size": 500, "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
                {
                    "digest": L,
                    "size": 500,
                    "platform": {"architecture": "unknown", "os": "unknown"},
                    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                },
            ],
        }
        parsed = parse_manifest(OCI_INDEX, body(index))
        assert parsed.platforms == [{"digest": D, "architecture": "arm", "os": "linux", "variant": "v7"}]
        assert (parsed.size, parsed.config, parsed.is_index) == (None, None, True)

    def test_media_type_from_the_body_when_the_registry_sends_none(self):
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        assert parse_manifest(None, body(index)).media_type == OCI_INDEX


class TestImageConfig:
    def test_fields(self):
        config = parse_image_config(
            body(
                {
                    "architecture": "arm64",
                    "os": "linux",
                    "variant": "v8",
                    "author": "me",
                    "created": "2024-05-06T07:08:09.123456789Z",
                }
            )
        )
        assert (config.architecture, config.os, config.variant, config.author) == ("arm64", "linux", "v8", "me")
        assert config.created.isoformat() == "2024-05-06T07:08:09.123456+00:00"

    @pytest.mark.parametrize(
        "value, expected",
        [
            ("2024-05-06T09:08:09+02:00", "2024-05-06T07:08:09+00:00"),
            ("2024-05-06T07:08:09", "2024-05-06T07:08:09+00:00"),
            ("yesterday", None),
            ("", None),
            (None, None),
            (12, None),
        ],
    )
    def test_created_is_utc_or_none(self, value, expected):
        parsed = parse_time(value)
        assert (parsed.isoformat() if parsed else None) == expected
