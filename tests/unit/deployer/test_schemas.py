"""RPC arguments: tenant_id required and valid, IDs are UUIDs, pages bounded."""

import uuid

import pytest

from deployer import schemas
from shared.contracts.errors import InvalidRequest

DEPLOYMENT = str(uuid.uuid4())


class TestArguments:
    @pytest.mark.parametrize(
        "tenant_id, message",
        [
            (None, "tenant_id is required"),
            ("", "tenant_id is empty"),
            ("Acme", "tenant_id 'Acme' must be lower-case"),
            (7, "tenant_id must be a string"),
            ("library", "'library' is the public library, not a tenant"),
        ],
    )
    def test_tenant_id_is_required_and_must_be_a_tenant(self, tenant_id, message):
        with pytest.raises(InvalidRequest, match=message):
            schemas.load_args(schemas.DeploymentRef, tenant_id=tenant_id, deployment_id=DEPLOYMENT)

    @pytest.mark.parametrize("deployment_id", ["web", "", None, 5])
    def test_deployment_id_must_be_an_id(self, deployment_id):
        with pytest.raises(InvalidRequest, match="deployment_id"):
            schemas.load_args(schemas.DeploymentRef, tenant_id="t1", deployment_id=deployment_id)

    def test_loaded_ids_are_strings(self):
        assert schemas.load_args(schemas.DeploymentRef, tenant_id="t1", deployment_id=DEPLOYMENT.upper()) == {
            "tenant_id": "t1",
            "deployment_id": DEPLOYMENT,
        }

    @pytest.mark.parametrize("spec", [None, "web", ["web"]])
    def test_a_spec_is_a_mapping(self, spec):
        with pytest.raises(InvalidRequest, match="spec"):
            schemas.load_args(schemas.CreateArgs, tenant_id="t1", spec=spec)

    @pytest.mark.parametrize("revision, ok", [(None, True), (2, True), (0, False), ("2", False), (True, False)])
    def test_rollback_revision_is_a_positive_number_or_none(self, revision, ok):
        def call():
            return schemas.load_args(schemas.RollbackArgs, tenant_id="t1", deployment_id=DEPLOYMENT, revision=revision)

        if ok:
            assert call()["revision"] == revision
        else:
            with pytest.raises(InvalidRequest, match="revision"):
                call()

    def test_pages_are_bounded(self):
        assert schemas.load_args(schemas.TenantPage, tenant_id="t1") == {"tenant_id": "t1", "page": 1, "page_size": 50}
        with pytest.raises(InvalidRequest, match="page_size must be from 1 to 200"):
            schemas.load_args(schemas.TenantPage, tenant_id="t1", page_size=500)

    def test_set_auto_deploy_needs_a_policy(self):
        with pytest.raises(InvalidRequest, match="policy is required"):
            schemas.load_args(schemas.AutoDeployArgs, tenant_id="t1", deployment_id=DEPLOYMENT)
        assert (
            schemas.load_args(schemas.AutoDeployArgs, tenant_id="t1", deployment_id=DEPLOYMENT, policy="force")[
                "policy"
            ]
            == "force"
        )
