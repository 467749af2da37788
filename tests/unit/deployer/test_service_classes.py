"""The deployer's two service classes: what each runs, and what they share (no broker needed:
the extensions are set up in a container that is never started)."""

import pytest
from nameko.containers import ServiceContainer
from nameko.events import EventHandler
from nameko.rpc import Rpc

from deployer.dependencies import DeployerDatabase, WorkerPoolSize
from deployer.service import DeployerService, DeployerWorker
from deployer.settings import ConfigurationError
from shared.runtime.consumer import ConsumingHandler
from shared.runtime.publishing import ConfirmedEventDispatcher


def container(service_cls, **config):
    return ServiceContainer(
        service_cls, dict({"AMQP_URI": "memory://", "DB_URIS": {"deployer:Base": "sqlite://"}}, **config)
    )


def extension(built, kind):
    [found] = [e for e in built.extensions if type(e) is kind]
    return found


def test_the_rpc_and_the_timer_are_the_deployers_and_the_event_handlers_the_workers():
    rpc, worker = container(DeployerService), container(DeployerWorker)
    assert (rpc.service_name, worker.service_name) == ("deployer", "deployer_worker")
    assert {type(e) for e in worker.entrypoints} == {ConsumingHandler}
    assert not any(isinstance(e, EventHandler) for e in rpc.entrypoints)
    assert any(isinstance(e, Rpc) for e in rpc.entrypoints)
    assert not hasattr(DeployerWorker, "reconcile_engines")
    assert DeployerWorker.catalog is None  # asks nothing of the catalog: no replies to wait for


@pytest.mark.parametrize("service_cls", [DeployerService, DeployerWorker])
def test_both_publish_as_deployer_on_the_deployers_database(service_cls):
    built = container(service_cls)
    dispatcher = extension(built, ConfirmedEventDispatcher)
    dispatcher.setup()
    assert dispatcher.exchange.name == "deployer.events"
    database = extension(built, DeployerDatabase)
    database.setup()
    try:
        assert database.db_uri == "sqlite://"
    finally:
        database.engine.dispose()


def test_the_worker_pool_has_its_own_size():
    worker, rpc = (
        container(DeployerWorker, max_workers=10, WORKER_MAX_WORKERS=2),
        container(DeployerService, max_workers=10, WORKER_MAX_WORKERS=2),
    )
    extension(worker, WorkerPoolSize).setup()
    assert (worker.max_workers, worker._worker_pool.size, worker._worker_pool.free()) == (2, 2, 2)
    assert rpc.max_workers == 10


def test_without_the_key_the_worker_keeps_max_workers():
    worker = container(DeployerWorker, max_workers=7)
    extension(worker, WorkerPoolSize).setup()
    assert (worker.max_workers, worker._worker_pool.size) == (7, 7)


@pytest.mark.parametrize("value", ["many", 0, -1])
def test_a_bad_worker_pool_size_stops_the_service_naming_the_key(value):
    worker = container(DeployerWorker, WORKER_MAX_WORKERS=value)  # extensions hold their container weakly
    with pytest.raises(ConfigurationError, match="WORKER_MAX_WORKERS must be"):
        extension(worker, WorkerPoolSize).setup()
