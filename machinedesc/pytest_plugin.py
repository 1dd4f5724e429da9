"""machinedesc's pytest plugin (entry point ``pytest11``): machines from boards for tests, torn down after them.

Fixtures (docs/api.md, "The pytest plugin"):

- ``machine``: an ``api.Machine`` built (and its CPUs started) from the
  test's ``@pytest.mark.machine(board, sets=None, firmware=(), **options)``,
  or from an indirect parametrization (``parametrize("machine", [...],
  indirect=True)`` with a board path or a dict of ``machine_factory``'s
  arguments); relative paths are relative to pytest's rootdir.
- ``machine_factory``: ``machine_factory(board, sets=None, firmware=(), **options)``
  builds one more machine (any number per test); every one is torn down
  (QEMU killed, its directory removed) when the test ends, pass or fail.

``options`` are ``api.machine``'s (``qemu``, ``timeout``, ``paused``,
``extra_args``...); ``--machinedesc-qemu`` and ``--machinedesc-timeout``
set the defaults. A failing test's report gets, per machine, a section with
the console's last lines and one with QEMU's stderr tail.

Under pytest-xdist every worker is its own process with its own QEMUs:
each QEMU gets a fresh private directory (``mkdtemp``), its QMP connection
is a socket pair made for it, and the shared caches (plans, the capability
probe, the patched build's location) are written by atomic rename, so
workers share nothing they can race on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from . import api

_MACHINES = pytest.StashKey[list[tuple[str, api.Machine]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("machinedesc", "machinedesc machines (docs/api.md)")
    group.addoption("--machinedesc-qemu", metavar="PATH", default=None,
                    help="QEMU binary for machinedesc's machine fixtures (default: apply's lookup).")
    group.addoption("--machinedesc-timeout", metavar="SECONDS", type=float, default=30.0,
                    help="Seconds to wait for QEMU's start and each QMP reply; console expect's default.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "machine(board, sets=None, firmware=(), **options): the board (and firmware, overrides, "
                   "api.machine options) the `machine` fixture builds for this test")


class MachineFactory:
    """``machine_factory(board, sets=None, firmware=(), **options)``: a started machine, torn down after the test."""

    def __init__(self, config: pytest.Config, node: pytest.Item, stack: contextlib.ExitStack) -> None:
        self._config = config
        self._node = node
        self._stack = stack

    def _path(self, value: str | Path) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self._config.rootpath / path

    def __call__(self, board: str | Path | api.Plan, sets: api.Overrides | None = None,
                 firmware: Sequence[str | Path] = (), **options: Any) -> api.Machine:
        options.setdefault("qemu", self._config.getoption("machinedesc_qemu"))
        options.setdefault("timeout", self._config.getoption("machinedesc_timeout"))
        if options.get("boot"):
            options["boot"] = {k: v if k == "append" or v in ("auto", "none") else self._path(v)
                               for k, v in options["boot"].items()}
        target = board if isinstance(board, api.Plan) else self._path(board)
        __tracebackhide__ = True  # a board or build error is its message, not machinedesc's call stack
        try:
            machine = api.machine(target, sets, [self._path(f) for f in firmware], **options)
            title = machine.job.title
            self._node.stash.setdefault(_MACHINES, []).append((title, machine))
            # Entering builds; if that fails, the Machine has already cleaned up.
            return self._stack.enter_context(machine)
        except api.MachinedescError as err:
            raise err.with_traceback(None) from None


@pytest.fixture
def machine_factory(request: pytest.FixtureRequest) -> Iterator[MachineFactory]:
    """Build machines from boards; all are torn down when the test ends."""
    with contextlib.ExitStack() as stack:
        yield MachineFactory(request.config, request.node, stack)


@pytest.fixture
def machine(request: pytest.FixtureRequest, machine_factory: MachineFactory) -> api.Machine:
    """The machine of the test's ``machine`` marker (or indirect parameter), built and running."""
    __tracebackhide__ = True  # a failed build is reported as its message (MachineFactory)
    param = getattr(request, "param", None)
    if param is not None:
        if isinstance(param, Mapping):
            return machine_factory(**param)
        return machine_factory(param)
    marker = request.node.get_closest_marker("machine")
    if marker is None:
        raise pytest.UsageError("the `machine` fixture needs @pytest.mark.machine(board, ...) or an indirect "
                                "parametrize of `machine`; or use `machine_factory`")
    return machine_factory(*marker.args, **marker.kwargs)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                               call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report: the console and QEMU stderr tails of each of its machines."""
    report = yield
    if report.failed:
        for title, machine in item.stash.get(_MACHINES, []):
            console = machine.console_tail() or "(nothing printed)"
            report.sections.append((f"machinedesc console of {title} (last lines)", console))
            report.sections.append((f"machinedesc QEMU stderr of {title} (last lines)",
                                    machine.stderr_tail() or "(empty)"))
    return report
