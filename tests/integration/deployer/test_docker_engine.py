"""``DockerEngine`` on the real engines honours ``deployer.engine.Engine``: the same results and
errors the unit tests' fake engine gives."""

import uuid

import pytest

from deployer.dependencies import DockerEngine
from deployer.engine import ContainerNotFound, ContainerSpec, EngineUnavailable, ImageNotFound
from deployer.settings import Host
from tests.support import free_port, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def engine_settings():
    from types import SimpleNamespace

    return SimpleNamespace(docker_api_version="1.41", engine_timeout=30, ping_timeout=2, pids_limit=512)


@pytest.fixture
def label():
    """A deployer ID of this test's own: no running deployer's reconciler touches its containers."""
    return "engine-test-" + uuid.uuid4().hex[:8]


@pytest.fixture
def engine(engine_settings):
    engine = DockerEngine(
        Host(
            name="local-2",
            pool="engines",
            base_url="unix:///var/run/imagehub-docker2.sock",
            address="127.0.0.1",
            cpus=2,
            memory=1024**3,
        ),
        engine_settings,
    )
    engine.made, engine.pulled = [], []
    yield engine
    for container_id in engine.made:
        engine.remove(container_id, 0)
    for image in engine.pulled:
        try:
            engine.api.remove_image(image, force=True)
        except Exception:  # another run's container may use it: it goes with that run
            pass
    engine.close()


def spec(image, label, **overrides):
    values = dict(
        name=f"ih-engine-test-{uuid.uuid4().hex[:8]}",
        image=image,
        command=None,
        env={"PORT": str(free_port())},
        labels={"imagehub.managed": "true", "imagehub.deployer": label, "imagehub.deployment": "engine-test"},
        cpu=0.1,
        memory=32 * 1024**2,
        restart_policy="no",
        network_mode="host",
    )
    values.update(overrides)
    return ContainerSpec(**values)


class TestDockerEngine:
    def test_a_missing_socket_is_unavailable(self, engine_settings):
        gone = DockerEngine(
            Host(
                name="gone",
                pool="p",
                base_url="unix:///var/run/no-such-engine.sock",
                address="127.0.0.1",
                cpus=1,
                memory=1024**3,
            ),
            engine_settings,
        )
        with pytest.raises(EngineUnavailable, match="gone"):
            gone.ping()
        with pytest.raises(EngineUnavailable):
            gone.list({"imagehub.managed": "true"})

    def test_an_unknown_digest_is_image_not_found(self, engine, registry, tenant, images):
        with pytest.raises(ImageNotFound):
            engine.pull(f"{registry.host}/{tenant}/web@sha256:" + "0" * 64, None)

    def test_has_image_is_true_only_for_a_reference_the_engine_holds(self, engine, registry, tenant, images):
        image = f"{registry.host}/{tenant}/web@{images['v1'][0]}"
        assert engine.has_image(f"{registry.host}/{tenant}/web@sha256:" + "0" * 64) is False
        engine.pull(image, None)
        engine.pulled.append(image)
        assert engine.has_image(image) is True

    def test_run_inspect_logs_list_remove(self, engine, registry, tenant, images, label):
        image = f"{registry.host}/{tenant}/web@{images['v1'][0]}"
        engine.ping()
        engine.pull(image, None)
        engine.pulled.append(image)
        container_id = engine.run(spec(image, label, command=["sh", "-c", "echo hello; exit 3"]))
        engine.made.append(container_id)
        # 50 back-to-back inspects took less time than the container needs to exit on a loaded
        # CI machine: wait on the clock instead.
        wait_until(
            lambda: not engine.inspect(container_id).running, timeout=30, what="the container to exit with code 3"
        )
        state = engine.inspect(container_id)
        assert (state.id, state.running, state.exit_code, state.restart_count) == (container_id, False, 3, 0)
        assert engine.logs(container_id, 5).strip() == "hello"
        [listed] = engine.list({"imagehub.deployer": label})
        assert (listed.id, listed.status, listed.labels["imagehub.managed"]) == (container_id, "exited", "true")
        assert engine.remove(container_id, 0) is True
        assert engine.remove(container_id, 0) is False
        with pytest.raises(ContainerNotFound):
            engine.inspect(container_id)

    def test_containers_run_under_an_init_so_a_stop_does_not_wait_for_the_timeout(
        self, engine, registry, tenant, images, label
    ):
        image = f"{registry.host}/{tenant}/web@{images['v1'][0]}"
        engine.pull(image, None)
        engine.pulled.append(image)
        container_id = engine.run(spec(image, label))  # busybox httpd, which has no SIGTERM handler
        engine.made.append(container_id)
        details = engine.api.inspect_container(container_id)
        assert details["HostConfig"]["Init"] is True
        # As PID 1 without a handler, httpd would ignore SIGTERM for ever; under init it exits. (The
        # bound only has to tell "exits" from "never": an engine busy building images for other
        # shards once took over 10 s to report the exit.)
        engine.api.kill(container_id, signal="SIGTERM")
        wait_until(
            lambda: not engine.inspect(container_id).running, timeout=45, what="the container to exit on SIGTERM"
        )
