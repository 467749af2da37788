"""Memory sizes as users write them."""

import pytest

from deployer.units import format_memory, parse_memory


class TestParseMemory:
    @pytest.mark.parametrize(
        "value, size",
        [
            ("256m", 256 * 1024**2),
            ("1g", 1024**3),
            ("1G", 1024**3),
            ("1.5g", 1536 * 1024**2),
            ("512k", 512 * 1024),
            ("64mb", 64 * 1024**2),
            ("2GiB", 2 * 1024**3),
            (" 128m ", 128 * 1024**2),
            ("1048576", 1048576),
            (1048576, 1048576),
            ("1t", 1024**4),
        ],
    )
    def test_sizes_in_docker_notation_are_bytes(self, value, size):
        assert parse_memory(value) == size

    @pytest.mark.parametrize("value", ["", "m", "12q", "1 g b", "-5m", "1,5g", "0", 0, -1, True, None, 1.5, [], "1e9"])
    def test_malformed_or_empty_sizes_are_refused(self, value):
        with pytest.raises(ValueError, match="must be"):
            parse_memory(value)


class TestFormatMemory:
    @pytest.mark.parametrize(
        "size, text", [(256 * 1024**2, "256m"), (1024**3, "1g"), (1536, "1536"), (1024, "1k"), (4 * 1024**4, "4t")]
    )
    def test_the_shortest_exact_form(self, size, text):
        assert format_memory(size) == text
        assert parse_memory(text) == size
