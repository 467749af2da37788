"""Placement spreads instances over hosts with room; ports come from the range, free ones only."""

import random

import pytest

from deployer.placement import HostLoad, NoCapacity, NoFreePort, allocate_ports, place

G = 1024**3


def hosts(*specs):
    return [
        HostLoad(name=f"h{i + 1}", cpus=cpus, memory=memory * G, **extra)
        for i, (cpus, memory, extra) in enumerate(specs)
    ]


class TestPlace:
    def test_replicas_spread_one_per_host_first(self):
        loads = hosts((2, 4, {}), (2, 4, {}), (2, 4, {}))
        assert place(loads, 4, 0.5, G // 4) == ["h1", "h2", "h3", "h1"]
        assert [h.instances for h in loads] == [2, 1, 1]
        assert loads[0].used_cpu == 1.0

    def test_fewest_instances_of_the_deployment_then_most_free_memory(self):
        loads = hosts((2, 4, {"instances": 1}), (2, 4, {"used_memory": 3 * G}), (2, 4, {"used_memory": G}))
        assert place(loads, 1, 0.1, G // 4) == ["h3"]

    def test_a_host_without_room_is_skipped(self):
        loads = hosts((1, 4, {"used_cpu": 0.9}), (2, 4, {}))
        assert place(loads, 2, 0.5, G) == ["h2", "h2"]

    def test_cpu_reservations_add_up_exactly(self):
        loads = hosts((0.3, 4, {}))
        assert place(loads, 3, 0.1, G // 4) == ["h1"] * 3

    def test_unreachable_hosts_take_nothing(self):
        loads = hosts((2, 4, {"reachable": False, "error": "connection refused"}), (2, 4, {}))
        assert place(loads, 2, 0.5, G) == ["h2", "h2"]

    def test_too_much_is_refused_whole_saying_why_per_host(self):
        loads = hosts((1, 1, {}), (2, 4, {"reachable": False, "error": "timed out"}))
        with pytest.raises(NoCapacity) as raised:
            place(loads, 2, 1, G // 2)
        message = str(raised.value)
        assert "(1 of 2 would fit)" in message
        assert "h1: 0 CPU and 512m free (needs 1 CPU and 512m)" in message
        assert "h2: unreachable (timed out)" in message
        assert (loads[0].used_cpu, loads[0].instances) == (0, 0)  # nothing half-placed

    def test_preferred_host_is_used_when_it_fits(self):
        loads = hosts((2, 4, {}), (2, 4, {"instances": 3}))
        assert place(loads, 1, 0.5, G, prefer="h2") == ["h2"]

    def test_a_preferred_host_without_room_is_passed_over(self):
        loads = hosts((2, 4, {}), (2, 4, {"used_cpu": 1.8}))
        assert place(loads, 1, 0.5, G, prefer="h2") == ["h1"]

    def test_a_fixed_port_goes_where_it_is_not_taken(self):
        shared = set()
        loads = hosts((2, 4, {"ports": {9000}}), (2, 4, {"ports": shared}))
        assert place(loads, 1, 0.5, G, fixed_ports={9000}) == ["h2"]
        assert shared == {9000}
        with pytest.raises(NoCapacity, match="host port 9000 already in use"):
            place(loads, 1, 0.5, G, fixed_ports={9000})


class TestAllocatePorts:
    def test_ports_are_unused_distinct_and_in_range(self):
        ports = allocate_ports(3, {20001, 20002}, (20000, 20009), lambda p: p != 20003, random.Random(1))
        assert len(set(ports)) == 3
        assert all(20000 <= p <= 20009 and p not in (20001, 20002, 20003) for p in ports)

    def test_the_last_free_port_is_found(self):
        in_use = set(range(20000, 20010)) - {20007}
        assert allocate_ports(1, in_use, (20000, 20009), lambda p: True, random.Random(3)) == [20007]

    def test_an_exhausted_range_is_an_error(self):
        with pytest.raises(NoFreePort, match="no free host port left in 20000-20001"):
            allocate_ports(2, {20000}, (20000, 20001), lambda p: True, random.Random(0))

    def test_zero_ports_is_nothing(self):
        assert allocate_ports(0, set(), (20000, 20001), lambda p: True, random.Random(0)) == []
