"""The CLI of the front half: exit codes, outputs, no tracebacks, atomic -o."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from needs import mounted_tmpfs

from machinedesc.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_validate_catalog(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["validate", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "boards").glob("*.yaml"))], capsys)
    assert code == 0, err
    assert "boards/soc.yaml: ok" in out


def test_plan_json_is_one_qmp_message_per_line(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "boards/soc.yaml", "--format", "json"], capsys)
    assert code == 0
    messages = [json.loads(line) for line in out.splitlines()]
    assert messages[0] == {"execute": "x-machine-init"}
    assert messages[-1] == {"execute": "x-exit-preconfig"}
    assert all(set(m) <= {"execute", "arguments"} for m in messages)


def test_plan_set_changes_core_count(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "boards/soc.yaml", "--set", "harts=3"], capsys)
    assert code == 0
    assert out.count("driver=rv64-riscv-cpu") == 3
    assert "-smp 1,maxcpus=3" in out


def test_plan_output_file_is_written_atomically(in_repo: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "soc.qmp"
    code, out, _ = run(["plan", "boards/soc.yaml", "-o", str(target)], capsys)
    assert code == 0 and out == ""
    assert target.read_text().startswith("# machinedesc plan, format 1\n")
    # A board error leaves neither the old file changed nor a temporary behind.
    code, _, err = run(["plan", "boards/soc.yaml", "--set", "nope=1", "-o", str(target)], capsys)
    assert code == 2 and "'nope' is not a parameter" in err
    assert target.read_text().startswith("# machinedesc plan, format 1\n")
    assert [p.name for p in tmp_path.iterdir()] == ["soc.qmp"]


def test_plan_output_keeps_mode_and_writes_through_a_symlink(in_repo: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "real.qmp"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.qmp"
    link.symlink_to(target)
    code, _, err = run(["plan", "boards/soc.yaml", "-o", str(link)], capsys)
    assert code == 0, err
    assert link.is_symlink(), "the symlink itself must stay"
    assert target.read_text().startswith("# machinedesc plan, format 1\n")
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.qmp", "real.qmp"]


def test_plan_output_to_a_new_file_follows_the_umask(in_repo: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    old = os.umask(0o027)
    try:
        code, _, _ = run(["plan", "boards/soc.yaml", "-o", str(tmp_path / "new.qmp")], capsys)
    finally:
        os.umask(old)
    assert code == 0
    assert (tmp_path / "new.qmp").stat().st_mode & 0o777 == 0o640


def test_plan_output_into_a_device_is_written_in_place(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-o /dev/null once replaced the device node with a regular file (as root)."""
    before = os.stat("/dev/null")
    code, out, err = run(["plan", "boards/soc.yaml", "-o", "/dev/null"], capsys)
    assert (code, out, err) == (0, "", "")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino


@pytest.mark.parametrize("where,needle", [
    ("{tmp}/missing/dir/out.qmp", "No such file or directory"),
    ("/proc/machinedesc-test.qmp", "cannot write /proc/machinedesc-test.qmp"),
    ("/dev/full", "No space left on device"),
])
def test_plan_output_errors_are_clean(in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      where: str, needle: str) -> None:
    path = where.format(tmp=tmp_path)
    code, out, err = run(["plan", "boards/soc.yaml", "-o", path], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith(f"machinedesc: cannot write {path}: ") and needle in err, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_plan_output_onto_a_read_only_file_system(in_repo: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with mounted_tmpfs(tmp_path / "ro", "ro,size=64k") as mnt:
        code, _, err = run(["plan", "boards/soc.yaml", "-o", str(mnt / "soc.qmp")], capsys)
    assert code == 2
    assert err == f"machinedesc: cannot write {mnt / 'soc.qmp'}: Read-only file system\n"


@pytest.mark.parametrize("args,code,needle", [
    (["plan", "boards/soc.yaml", "--set", "harts"], 2, "--set expects NAME=VALUE"),
    (["plan", "boards/missing.yaml"], 2, "missing.yaml: cannot read"),
    (["plan", "boards/soc.yaml", "--format", "xml"], 2, "Invalid value for '--format'"),
    (["validate"], 2, "Missing argument"),
])
def test_usage_errors(in_repo: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int,
                      needle: str) -> None:
    got, _, err = run(args, capsys)
    assert got == code
    assert needle in err
    assert "Traceback" not in err


def test_schema_command_prints_the_shipped_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema"], capsys)
    assert code == 0
    assert json.loads(out) == json.loads((ROOT / "schemas" / "board.schema.json").read_text())


def test_console_script_runs(in_repo: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "machinedesc.cli", "plan", "boards/seed-a72.yaml"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "driver=cortex-a72-arm-cpu" in proc.stdout


@pytest.mark.parametrize("case", ["host-backends", "host-qmp-commands", "host-machine-props", "host-qmp-chardev-file"])
def test_allow_host_access_lets_a_trusted_board_through(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str], case: str) -> None:
    monkeypatch.setenv("MACHINEDESC_CACHE", str(tmp_path / "cache"))
    board = f"tests/data/invalid/{case}.yaml"
    code, out, err = run(["validate", "--allow-host-access", board], capsys)
    # host-backends names a system without a type database (usb-host is in no shipped build): validate says so.
    note = ("note: no type database for qemu-system-vendor: only the hand-written types "
            "(qemu/data/qemu_types.yaml) are checked\n") if case == "host-backends" else ""
    assert (code, out, err) == (0, f"{board}: ok\n", note)
    # The flag is part of the plan cache's key: the cached plan does not let it through without.
    code, _, err = run(["plan", board], capsys)
    assert code == 2 and "--allow-host-access" in err


def test_allowed_host_access_reaches_the_plan(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "--allow-host-access", "tests/data/invalid/host-backends.yaml"], capsys)
    assert code == 0
    assert "-chardev file,path=/tmp/console.log,id=out" in out


def test_plan_output_onto_its_own_board_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`plan s.yaml -o s.yaml` (or through a symlink) must not replace the board with its plan."""
    board = tmp_path / "s.yaml"
    board.write_text((Path(__file__).parent.parent / "boards" / "soc.yaml").read_text())
    before = board.read_bytes()
    (tmp_path / "link.qmp").symlink_to(board)
    for target in (board, tmp_path / "link.qmp"):
        code, out, err = run(["plan", str(board), "-o", str(target)], capsys)
        assert (code, out) == (2, "")
        assert "an input of this command: writing it would destroy it" in err and "Traceback" not in err
    assert board.read_bytes() == before


@pytest.mark.parametrize("cmd", ["plan", "apply"])
@pytest.mark.parametrize("firmware", ["/dev/zero", "fifo"])
def test_firmware_must_be_a_regular_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         cmd: str, firmware: str) -> None:
    """A FIFO blocked QEMU until the timeout; /dev/zero grew QEMU to gigabytes: refused before QEMU starts."""
    if firmware == "fifo":
        firmware = str(tmp_path / "f.elf")
        os.mkfifo(firmware)
    board = Path(__file__).parent.parent / "boards" / "soc.yaml"
    code, out, err = run([cmd, str(board), "--firmware", firmware], capsys)
    assert (code, out) == (2, "")
    assert f"--firmware {firmware}: is a " in err and ", not a regular file" in err  # the boards' wording


def test_console_file_onto_the_board_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    board = tmp_path / "s.yaml"
    board.write_text((Path(__file__).parent.parent / "boards" / "soc.yaml").read_text())
    code, _, err = run(["apply", str(board), "--serial", f"file:{board}"], capsys)
    assert code == 2 and "--serial" in err and "would destroy it" in err
    assert board.read_text().startswith("# yaml-language-server")


@pytest.mark.parametrize("args", [["plan", "boards/soc.yaml"], ["schema"], ["--help"], ["validate", "boards/soc.yaml"]])
def test_a_full_standard_output_is_exit_6_without_traceback(in_repo: Path, args: list[str]) -> None:
    with open("/dev/full", "wb") as full:
        out = subprocess.run([sys.executable, "-m", "machinedesc.cli", *args], stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    assert out.returncode == 6, out.stderr
    assert out.stderr == "machinedesc: cannot write standard output: No space left on device\n"


def test_a_reader_that_goes_away_is_quiet(in_repo: Path) -> None:
    """`machinedesc plan ... | head -1`: the reader left; nothing to report (click's convention: exit 0)."""
    proc = subprocess.Popen([sys.executable, "-m", "machinedesc.cli", "plan", "boards/soc.yaml",
                             "--set", "harts=3000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"# machinedesc plan")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0 and err == ""
    proc.stderr.close()


def test_plan_output_into_a_pipe_by_name(in_repo: Path) -> None:
    """`-o /dev/stdout` into a pipe (and a shell's `-o >(...)`) was refused: 'cannot write /dev/fd/63'."""
    out = subprocess.run([sys.executable, "-m", "machinedesc.cli", "plan", "boards/soc.yaml", "-o", "/dev/stdout"],
                         capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout.startswith("# machinedesc plan, format 1\n")


@pytest.mark.parametrize("args", [["validate", ""], ["plan", ""], ["dtb", ""], ["show", ""], ["apply", ""]])
def test_an_empty_file_name_is_refused_by_name(in_repo: Path, capsys: pytest.CaptureFixture[str],
                                               args: list[str]) -> None:
    """'' would be Path('.'), the working directory: the error must say the name is empty."""
    code, out, err = run(args, capsys)
    assert (code, out) == (2, "")
    assert "an empty file name" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["plan", "dtb", "graph"])
def test_output_dash_is_standard_output(in_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], command: str) -> None:
    board = ROOT / "boards" / "soc.yaml"
    monkeypatch.chdir(tmp_path)
    extra = ["--format", "dts"] if command == "dtb" else []
    code, out, err = run([command, str(board), *extra, "-o", "-"], capsys)
    assert code == 0, err
    assert out and not (tmp_path / "-").exists()
    code, same, _ = run([command, str(board), *extra], capsys)
    assert (code, same) == (0, out)


def test_a_console_socket_path_too_long_for_sun_path_is_a_usage_error(in_repo: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["apply", "boards/soc.yaml", "--serial", "socket:/tmp/" + "a" * 120], capsys)
    assert (code, out) == (2, "")
    assert "shorter than 108 bytes" in err


def test_invisible_characters_are_escaped_in_messages() -> None:
    from machinedesc.errors import printable

    assert printable("uart\u200d0\u200b\ufeff\u2060") == "uart\\u200d0\\u200b\\ufeff\\u2060"
    assert printable("é ü 😀") == "é ü 😀"  # printable text is left alone


def test_another_programs_messages_keep_their_lines() -> None:
    """dtc's messages were printed with literal \\n (adversarial pass): line breaks kept, the rest escaped."""
    from machinedesc.errors import printable_lines

    assert printable_lines("dtc refused:\n<stdin>:1.1: Warning\x1b[31m") == "dtc refused:\n<stdin>:1.1: Warning\\x1b[31m"
