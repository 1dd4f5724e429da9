"""Exit codes come from one table: every error class names a row of it, and --help prints it."""

from __future__ import annotations

import inspect

from click.testing import CliRunner

from machinedesc import errors
from machinedesc.cli import EXIT_CODES, cli
from machinedesc.errors import EXIT_MEANINGS, Exit, MachinedescError, exit_table


def _error_classes() -> list[type[MachinedescError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, MachinedescError)]


def test_every_error_class_lives_in_errors_and_names_a_documented_exit_status() -> None:
    classes = _error_classes()
    assert len(classes) >= 12
    for cls in classes:
        assert cls.__module__ == "machinedesc.errors", cls
        assert cls.exit_code in Exit, cls
        assert Exit(cls.exit_code) in EXIT_MEANINGS, cls


def test_every_exit_status_has_a_meaning_and_the_help_shows_the_table() -> None:
    assert set(EXIT_MEANINGS) == set(Exit)
    assert EXIT_CODES == exit_table()
    out = CliRunner().invoke(cli, ["--help"])
    assert out.exit_code == 0
    for code, meaning in EXIT_MEANINGS.items():
        assert f"  {code.value:<4} {meaning[0]}" in out.output


def test_interrupted_exits_with_128_plus_the_signal() -> None:
    import signal

    assert errors.Interrupted(signal.SIGINT).exit_code == 130
    assert errors.Interrupted(signal.SIGTERM).exit_code == 143


def test_qemu_error_shows_the_stderr_tail_once_below_the_message() -> None:
    err = errors.QemuError("machinedesc: QEMU exited", "a\nb")
    assert str(err) == "machinedesc: QEMU exited\n  QEMU stderr (last lines):\n    a\n    b"
    assert str(errors.QemuError("x", "")) == "x"
    assert (err.message, err.stderr_tail) == ("machinedesc: QEMU exited", "a\nb")
