"""Shared pytest set-up: the hypothesis profile (see refcnn/testing/profiles.py), the run's
environment stored with its records, and a progress line per op family as it completes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest

from refcnn.testing import mutation_order, records
from refcnn.testing.profiles import costly_examples, register_profiles

PROFILE = register_profiles()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("refcnn")
    group.addoption(
        "--refcnn-impl",
        default=None,
        help="run the oracle's checks on this candidate too (like REFCNN_IMPL): a .py file, "
        "a dotted module, torch, torch:cuda, ... (see python -m refcnn check --help)",
    )
    group.addoption("--refcnn-style", default=None, help="auto, book, refcnn or custom")


def pytest_ignore_collect(collection_path: Any, config: pytest.Config) -> bool | None:
    """conformance/test_candidate.py exists only when a candidate is named."""
    if collection_path.name == "test_candidate.py":
        from refcnn.testing import oracle

        return oracle.selected_candidate(config)[0] is None
    return None


def pytest_configure(config: pytest.Config) -> None:
    import os

    for option, variable in (("refcnn_impl", "REFCNN_IMPL"), ("refcnn_style", "REFCNN_STYLE")):
        if config.getoption(option, None):  # the report's environment names the candidate
            os.environ[variable] = config.getoption(option)
    if hasattr(config, "workerinput"):
        return  # a pytest-xdist worker: the controller reports progress and stores the run
    config.pluginmanager.register(FamilyProgress(config), "refcnn-progress")
    directory = records.records_dir()
    if directory is not None:
        from refcnn.testing import report

        profile = config.getoption("hypothesis_profile", None) or PROFILE
        seed, policy = config.getoption("hypothesis_seed", None), report.seed_policy(profile)
        if seed is not None and policy == "random":  # derandomized profiles ignore the seed
            policy = f"fixed: {seed}"
        env = report.environment(profile, policy)
        env["pytest_args"] = " ".join(config.invocation_params.args)  # a partial run?
        records.write_environment(directory, env)


def pytest_report_header(config: pytest.Config) -> str:
    """How many examples each property draws: the count a run's time scales with."""
    from hypothesis import settings

    profile = config.getoption("hypothesis_profile", None) or PROFILE
    chosen = settings.get_profile(profile)
    seeds = "derandomized" if chosen.derandomize else "random seed"
    return (
        f"refcnn: hypothesis profile {profile!r}: up to {chosen.max_examples} examples per "
        f"property test (each op x check x dtype), {costly_examples(chosen.max_examples)} for "
        f"the checks an op marks costly (the networks' full Jacobians) and the checks of "
        f"validation, plus the ops' edge cases; {seeds}"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests family by family (stable: in order of each family's first test, a family
    with an op's costly checks first), so that families complete one after another and the
    progress lines come throughout the run. Every xdist worker sorts the same way, as xdist
    requires. Under mutmut, the order of :mod:`refcnn.testing.mutation_order` instead."""
    grouping = Grouping()
    group = grouping.group
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(group(item.nodeid), index)
    costly = grouping.costly_families
    # the family with the longest tests first, so that pytest-xdist's workers finish together
    items.sort(key=lambda item: (group(item.nodeid) not in costly, first[group(item.nodeid)]))
    mutant = mutation_order.mutant_under_test()
    if mutant is not None:  # under mutmut: the cheapest, most relevant tests first (-x stops there)
        key = mutation_order.sort_key_for_mutant(mutant, mutation_order.measured_durations())
        items.sort(key=lambda item: key(item.nodeid))


class Grouping:
    """The family of a test: the catalog family of the op named in its parameter id (property
    and conformance tests), else its top directory ("tests", "docs")."""

    def __init__(self) -> None:
        from refcnn.testing import catalog

        self.families = {spec.name: spec.family for spec in catalog.OPS}
        self.costly_families = {spec.family for spec in catalog.OPS if spec.costly_checks}

    def group(self, nodeid: str) -> str:
        path, _, name = nodeid.partition("::")
        if "[" in name:
            for token in name[name.index("[") + 1 : name.rindex("]")].split("-"):
                if token in self.families:
                    return self.families[token]
        return path.split("/")[0]


class FamilyProgress:
    """Prints ``[refcnn] pooling: 212 tests done, 0 failed (41 s)`` when a family's last test
    has reported, so a long run is not a silent wait.

    Families as :class:`Grouping` defines them. Under pytest-xdist this runs in the controller,
    which receives every worker's reports and the ids the workers collected.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.group = Grouping().group
        self.started = time.monotonic()
        self.expected: Counter[str] | None = None
        self.done: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.failing: set[str] = set()
        self.failures: list[dict[str, str]] = []
        self.outcomes: Counter[str] = Counter()

    def expect(self, nodeids: Iterable[str]) -> None:
        if self.expected is None:  # every xdist worker collects the same tests
            self.expected = Counter(self.group(nodeid) for nodeid in nodeids)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.expect(item.nodeid for item in session.items)  # without xdist

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.expect(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed and report.nodeid not in self.failing:
            self.failing.add(report.nodeid)
            self.failures.append(
                {
                    "nodeid": report.nodeid,
                    "family": self.group(report.nodeid),
                    "when": report.when,
                    "message": _crash_message(report),
                }
            )
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.outcomes[report.outcome] += 1
        if report.when != "teardown" or self.expected is None:
            return  # a test is done when its teardown has reported
        group = self.group(report.nodeid)
        self.done[group] += 1
        if report.nodeid in self.failing:
            self.failed[group] += 1
        if self.done[group] == self.expected[group]:
            elapsed = time.monotonic() - self.started
            terminal = self.config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                writer = getattr(terminal, "_tw", None)  # pytest's TerminalWriter
                if getattr(writer, "width_of_current_line", 1):
                    terminal.write("\n")  # not after the progress dots on the same line
                terminal.write_line(
                    f"[refcnn] {group}: {self.done[group]} tests done, "
                    f"{self.failed[group]} failed ({elapsed:.0f} s)"
                )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Store what pytest saw next to the records: a test can fail before any comparison
        (an exception in the op, a health check), and the report must say so."""
        directory = records.records_dir()
        if directory is None:
            return
        records.write_outcomes(
            directory,
            {
                "collected": sum((self.expected or Counter()).values()),
                "passed": self.outcomes["passed"],
                "failed": len(self.failing),
                "skipped": self.outcomes["skipped"],
                "failures": self.failures,
            },
        )


def _crash_message(report: pytest.TestReport) -> str:
    """The reason of a failure, as pytest's summary shows it, at most 500 characters."""
    message = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
    if not message:
        lines = str(report.longrepr).strip().splitlines()
        message = lines[-1] if lines else "failed"
    return str(message)[:500]
