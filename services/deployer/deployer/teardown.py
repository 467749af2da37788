"""Removing a deleted deployment: every container it made, on every host of its pool."""

import logging

from deployer.engine import DEPLOYER, DEPLOYMENT, EngineError
from deployer.runs import Live, Run
from deployer.settings import Host

log = logging.getLogger(__name__)


class Teardown(Run):
    """Remove every container of a deleted deployment on every host of its pool, rows or not."""

    def run(self) -> None:
        pool = self.claim_removal()
        if pool is None:
            return
        labels = {DEPLOYER: self.settings.deployer_id, DEPLOYMENT: self.deployment_id}

        def sweep(host: Host) -> tuple[str, str | None]:
            try:
                found = self.rt.engine(host.name).list(labels)
            except EngineError as exc:
                return host.name, str(exc)
            self.remove_containers(
                [
                    Live(
                        id="",
                        revision=0,
                        host=host.name,
                        container_name=c.name,
                        container_id=c.id,
                        state="",
                        ports=[],
                        cpu=0,
                        memory=0,
                    )
                    for c in found
                ]
            )
            return host.name, None

        unreachable = {name: error for name, error in self.rt.run_all(sweep, list(pool.hosts)) if error}
        reason = None
        if unreachable:
            reason = (
                f"containers may remain on unreachable host(s) {', '.join(sorted(unreachable))}; the "
                f"reconciler removes them once the host answers"
            )
        self.finish_removal(reason)
