"""shared.runtime.settings: checked parsers naming the key, and settings loaded once per container."""

import pytest

from shared.runtime.settings import SettingError, boolean, number, positive_int, seconds, settings_of, text


class TestParsers:
    def test_text_is_stripped_and_required_unless_said(self):
        assert text({"A": "  x "}, "A") == "x"
        assert text({}, "A", required=False) == ""
        with pytest.raises(SettingError, match="setting A is empty"):
            text({"A": " "}, "A")

    @pytest.mark.parametrize("raw, value", [(2, 2.0), ("0.5", 0.5), (0, 0.0)])
    def test_number_reads_yaml_numbers_and_strings(self, raw, value):
        assert number({"N": raw}, "N", minimum=0) == value

    @pytest.mark.parametrize("raw", [None, "ten", "nan", -1, 2])
    def test_number_refuses_what_is_not_a_number_in_range(self, raw):
        with pytest.raises(SettingError, match="setting N must be"):
            number({"N": raw}, "N", minimum=0, maximum=1)

    def test_seconds_take_zero_only_when_it_means_never(self):
        assert seconds({"S": 0}, "S", allow_zero=True) == 0
        with pytest.raises(SettingError, match="setting S must be a positive number of seconds"):
            seconds({"S": 0}, "S")

    @pytest.mark.parametrize("raw, value", [(1, 1), ("25", 25)])
    def test_positive_int(self, raw, value):
        assert positive_int({"I": raw}, "I") == value

    @pytest.mark.parametrize("raw", [0, -3, "2.5", True, None, 1.0])
    def test_positive_int_refuses_the_rest(self, raw):
        with pytest.raises(SettingError, match="setting I must be a whole number of at least 1"):
            positive_int({"I": raw}, "I")

    @pytest.mark.parametrize("raw, value", [(True, True), ("yes", True), ("Off", False), ("", False), (None, False)])
    def test_boolean(self, raw, value):
        assert boolean({"B": raw}, "B") is value

    def test_boolean_refuses_other_words(self):
        with pytest.raises(SettingError, match="setting B must be true or false"):
            boolean({"B": "maybe"}, "B")


class Container:
    def __init__(self, config):
        self.config = config


class TestSettingsOf:
    def test_loaded_once_per_container_and_shared(self):
        calls = []

        def load(config):
            calls.append(config)
            return {"port": config["PORT"]}

        one, other = Container({"PORT": 1}), Container({"PORT": 2})
        first, again = settings_of(one, load), settings_of(one, load)
        assert first is again and first == {"port": 1}
        assert settings_of(other, load) == {"port": 2}
        assert len(calls) == 2
