"""Auto-deploy policies on tags alone: the syntax, version order, and which push each one follows."""

import itertools

import pytest

from deployer.policy import PolicyError, Version, parse_policy, parse_version

# (policy, running tag, pushed tag, moves?)
TABLE = [
    # never
    ("never", "v1.0", "v1.1", False),
    ("never", "latest", "latest", False),
    # force: the very tag it runs, whatever it is
    ("force", "latest", "latest", True),
    ("force", "v1.0", "v1.0", True),
    ("force", "latest", "v1.1", False),
    ("force", "v1.0", "v1.1", False),
    # semver:major — any higher version
    ("semver:major", "v1.0", "v2.0", True),
    ("semver:major", "v1.0", "v1.1", True),
    ("semver:major", "v1.0", "v1.0.1", True),
    ("semver:major", "v2.0", "v1.9", False),
    ("semver:major", "v1.0", "v1.0", False),
    # semver:minor — the same major
    ("semver:minor", "v1.0", "v1.1", True),
    ("semver:minor", "v1.0", "v1.0.5", True),
    ("semver:minor", "v1.0", "v2.0", False),
    ("semver:minor", "v1.1", "v1.0", False),
    ("semver:minor", "v1.1", "v1.1.0", False),  # the same version spelled otherwise
    ("semver:minor", "1.9", "1.10", True),  # numbers, not text
    # semver:patch — the same major and minor
    ("semver:patch", "1.2.3", "1.2.4", True),
    ("semver:patch", "1.2.3", "1.3.0", False),
    ("semver:patch", "1.2.3", "2.2.4", False),
    ("semver:patch", "1.2.3", "1.2.2", False),
    # a leading v, or none, on either side
    ("semver:minor", "1.0", "v1.1", True),
    ("semver:minor", "v1.0", "1.1", True),
    ("semver:minor", "V1.0", "v1.1", True),
    # pre-releases only when asked
    ("semver:minor", "v1.0", "v1.1.0-rc.1", False),
    ("semver:minor+prerelease", "v1.0", "v1.1.0-rc.1", True),
    ("semver:minor+prerelease", "v1.1.0-rc.1", "v1.1.0-rc.2", True),
    ("semver:minor+prerelease", "v1.1.0-rc.2", "v1.1.0-rc.10", True),  # numeric identifiers by value
    ("semver:minor+prerelease", "v1.1.0-rc.1", "v1.1.0", True),  # the release after its pre-release
    ("semver:minor+prerelease", "v1.1.0", "v1.1.0-rc.9", False),
    ("semver:minor+prerelease", "v1.1.0-beta", "v1.1.0-alpha", False),
    ("semver:minor", "v1.1.0-rc.1", "v1.1.0", True),  # running a pre-release: its release is higher
    ("semver:minor", "v1.1.0-rc.1", "v1.1.0-rc.2", False),
    ("semver:patch", "1.25", "1.25-alpine", False),  # a variant suffix is a pre-release
    ("semver:patch+prerelease", "1.25.0-alpine", "1.25.1-alpine", True),
    # tags that are not versions
    ("semver:major", "latest", "v1.1", False),
    ("semver:major", "v1.0", "latest", False),
    ("semver:major", "v1.0", "v01.1", False),  # leading zero
    ("semver:major", "v1.0", "1.2.3.4", False),
    ("semver:major", "v1.0", "build-2024", False),
    # glob: the whole tag, case-sensitive; never lower when both are versions
    ("glob:v1.*", "v1.0", "v1.1", True),
    ("glob:v1.*", "v1.0", "v2.0", False),
    ("glob:v1.*", "v1.1", "v1.0", False),
    ("glob:v1.*", "v1.0", "V1.1", False),
    ("glob:*", "latest", "main-3f2a9c1", True),
    ("glob:main-*", "main-aaaa", "main-bbbb", True),  # not versions: no order, the push wins
    ("glob:release-[0-9]*", "release-1", "release-x", False),
    ("glob:v1.?", "v1.0", "v1.10", False),
    ("glob:*", "v1.1", "v1.1", True),  # the same tag with new content
    # regexp: a full match
    (r"regexp:^v1\.\d+$", "v1.0", "v1.7", True),
    (r"regexp:v1\.\d+", "v1.0", "v1.7-rc", False),
    (r"regexp:v1\.\d+", "v1.0", "xv1.7", False),
    (r"regexp:v\d+\.\d+", "v2.0", "v1.9", False),
    (r"regexp:(main|dev)-\w+", "main-1", "dev-2", True),
]


class TestWants:
    @pytest.mark.parametrize("policy, running, pushed, moves", TABLE, ids=[f"{p}:{r}->{t}" for p, r, t, _ in TABLE])
    def test_table(self, policy, running, pushed, moves):
        verdict = parse_policy(policy).wants(running, pushed)
        assert verdict.move is moves, verdict.reason
        assert verdict.reason

    @pytest.mark.parametrize(
        "policy, running, pushed, reason",
        [
            ("never", "v1", "v2", "policy never"),
            ("force", "latest", "v1", "force follows only the tag it runs (latest)"),
            ("semver:minor", "v1.0", "v2.0", "v2.0 is outside semver:minor of v1.0 (another major version)"),
            ("semver:patch", "1.2.3", "1.3.0", "1.3.0 is outside semver:patch of 1.2.3 (another minor version)"),
            (
                "semver:minor",
                "v1.0",
                "v1.1-rc.1",
                "v1.1-rc.1 is a pre-release (semver:minor leaves them out; add +prerelease)",
            ),
            ("semver:minor", "latest", "v1.1", "the running tag latest is not a version"),
            ("semver:minor", "v1.0", "edge", "edge is not a version"),
            ("semver:minor", "v1.1", "v1.0", "v1.0 is not higher than v1.1"),
            ("glob:v1.*", "v1.1", "v1.0", "v1.0 is a lower version than v1.1"),
            ("glob:v1.*", "v1.1", "v2.0", "v2.0 does not match glob:v1.*"),
            ("semver:minor", "v1.0", "v1.1", "v1.1 is higher than v1.0 within semver:minor"),
        ],
    )
    def test_says_why(self, policy, running, pushed, reason):
        assert parse_policy(policy).wants(running, pushed).reason == reason


class TestVersions:
    @pytest.mark.parametrize(
        "tag, version",
        [
            ("v1", Version(1, 0, 0)),
            ("1.2", Version(1, 2, 0)),
            ("V1.2.3", Version(1, 2, 3)),
            ("0.0.0", Version(0, 0, 0)),
            ("1.2.3-rc.1", Version(1, 2, 3, ("rc", "1"))),
            ("1.25-alpine", Version(1, 25, 0, ("alpine",))),
            ("10.20.30-x-y.7", Version(10, 20, 30, ("x-y", "7"))),
        ],
    )
    def test_parsed(self, tag, version):
        assert parse_version(tag) == version

    @pytest.mark.parametrize(
        "tag", ["latest", "", "v", "vv1", "1.", "01.2", "1.02", "1.2.3.4", "1.2.3-", "1.2.3-rc..1", "x1.2", "1.2_3"]
    )
    def test_not_versions(self, tag):
        assert parse_version(tag) is None

    def test_semver_precedence(self):
        # The example order of semver.org, 11: each lower than the next.
        tags = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ]
        versions = [parse_version(t) for t in tags]
        assert all(a < b and b > a for a, b in itertools.pairwise(versions))
        backwards = versions[::-1]
        assert sorted(backwards, key=lambda v: v.key) == versions

    def test_text(self):
        assert [str(parse_version(t)) for t in ("v1", "1.2.3-rc.1")] == ["1.0.0", "1.2.3-rc.1"]


class TestSyntax:
    @pytest.mark.parametrize(
        "text",
        [
            "never",
            "force",
            "semver:major",
            "semver:minor",
            "semver:patch",
            "semver:major+prerelease",
            "semver:patch+prerelease",
            "glob:v*",
            "glob:*",
            r"regexp:^v\d+$",
        ],
    )
    def test_accepted_as_written(self, text):
        assert str(parse_policy(text)) == text

    @pytest.mark.parametrize(
        "text, message",
        [
            ("sometimes", "must be one of never, force, semver:major|minor|patch (optionally +prerelease"),
            ("Never", "must be one of"),
            ("semver", "must be one of"),
            ("semver:", "a semver policy is semver:major, semver:minor or semver:patch"),
            ("semver:huge", "a semver policy is"),
            ("semver:minor+rc", "optionally followed by +prerelease"),
            ("semver:minor+", "optionally followed by +prerelease"),
            ("glob:", "give a pattern after 'glob:'"),
            ("regexp:", "give a pattern after 'regexp:'"),
            ("regexp:v(1", "is not a valid regular expression (RE2 syntax): missing ): v(1"),
            ("regexp:(v)\\1", "(RE2 syntax): invalid escape sequence: \\1"),  # a backreference
            ("regexp:v(?=1)", "(RE2 syntax): invalid perl operator: (?="),  # a lookahead
            ("regexp:\ud800", "(RE2 syntax): contains a character that is not valid Unicode"),
            ("regexp:" + "a" * 257, "a regexp policy's pattern is at most 256 characters, got 257"),
            ("glob:" + "*" * 257, "a glob policy's pattern is at most 256 characters, got 257"),
            ("tag:v1", "must be one of"),
            (None, "must be a string"),
            (3, "must be a string"),
        ],
    )
    def test_refused_saying_why(self, text, message):
        with pytest.raises(PolicyError) as raised:
            parse_policy(text)
        assert message in str(raised.value)


class TestRegexpsRunInLinearTime:
    """Patterns that backtrack catastrophically in Python's re are accepted and answer at once:
    RE2 does not backtrack (the fuzz suite's catastrophic cases, tests/integration/deployer)."""

    @pytest.mark.timeout(20)  # with Python's re, each would run longer than the universe
    @pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a|aa)+$", r"(a*)*b", r"(\w+\d*)+-x"])
    def test_a_catastrophic_pattern_on_a_hostile_tag(self, pattern):
        policy = parse_policy(f"regexp:{pattern}")
        verdict = policy.wants("v1", "a" * 127 + "-")
        assert (verdict.move, verdict.reason) == (False, f"{'a' * 127}- does not match regexp:{pattern}")

    def test_a_stored_pattern_re2_refuses_never_follows(self):
        from deployer.policy import REGEXP, Policy

        verdict = Policy(REGEXP, pattern=r"(v)\1").wants("v1", "vv")
        assert verdict.move is False and "not a valid RE2 expression any more" in verdict.reason
