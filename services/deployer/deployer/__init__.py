"""The deployer service: resource pools, deployments, rollout and rollback.

Not built yet (issue "Deployer: deploy any catalogued version onto a resource pool"); the package
exists so the layout matches the design and the suite's packaging is complete.
"""
