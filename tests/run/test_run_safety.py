"""`machinedesc run` with hostile or careless input (issue 8): nothing runs that should not, nothing is left behind.

A QMP file names a program, so run starts only a qemu-system-* binary from its
header and holds its header and commands to the host-access policy; options
that detach QEMU are refused; a directory left by a SIGKILLed machinedesc is
reaped by the next run; a console that cannot be written is an error.  Stock
QEMU is enough for all of it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import Sandbox, StderrWatcher
from needs import mounted_tmpfs

LINES = ["hello from hart 0", "hello from hart 1", "hello from timer interrupt"]


def none_file(path: Path, body: str, header: str = "-M none -nodefaults -display none -preconfig") -> Path:
    path.write_text(f"# a test file\n# system: riscv64\n# qemu: qemu-system-riscv64 {header}\n\n{body}")
    return path


def virt_file(path: Path, elf: Path) -> Path:
    return none_file(path, "x-exit-preconfig\n", f"-M virt -smp 2 -bios {elf} -nodefaults -display none "
                                                 "-chardev stdio,id=serial0 -serial chardev:serial0 -preconfig")


# --- what a file may run ------------------------------------------------------

def test_header_may_only_name_a_qemu_system_binary(sandbox: Sandbox, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    f = sandbox.base / "evil.qmp"
    f.write_text(f"# qemu: /bin/sh -c 'touch {marker}'\nx-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f)))
    assert out.rc == 2, out.stderr
    assert out.stderr.startswith(f"{f}:1:1: the '# qemu:' header would run '/bin/sh', which is not a qemu-system-* "
                                 "binary\n  hint: a QMP file is a program"), out.stderr
    assert "--qemu PATH" in out.stderr
    assert not marker.exists()
    sandbox.assert_clean()


def test_system_header_must_be_a_system_name(sandbox: Sandbox) -> None:
    f = sandbox.base / "evil.qmp"
    f.write_text("# system: ../../tmp/x\n# qemu: qemu-system-riscv64 -M none\nx-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f)))
    assert out.rc == 2 and out.stderr.startswith(f"{f}:1:1: invalid system '../../tmp/x'"), out.stderr
    sandbox.assert_clean()


def test_unbalanced_quote_in_the_header_is_an_error_at_its_line(sandbox: Sandbox, stock_riscv: Path) -> None:
    f = sandbox.base / "quote.qmp"
    f.write_text("# system: riscv64\n# qemu: qemu-system-riscv64 -M none -name 'a b\nx-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert out.rc == 2, out.stderr
    assert out.stderr.startswith(f"{f}:2:1: cannot split the '# qemu:' command line: No closing quotation\n")
    assert "Traceback" not in out.stderr
    sandbox.assert_clean()


@pytest.mark.parametrize("line,needle", [
    ("migrate uri=\"exec:touch {marker}\"", "QMP command 'migrate' touches the host"),
    ("human-monitor-command command-line=\"migrate exec:touch {marker}\"",
     "QMP command 'human-monitor-command' touches the host"),
    ("chardev-add id=c backend={{\"type\":\"file\",\"data\":{{\"out\":\"{marker}\"}}}}",
     "chardev backend 'file' touches the host"),
    ("dump-guest-memory paging=false protocol=file:{marker}", "QMP command 'dump-guest-memory' touches the host"),
    # x-batch (patch 44) runs the commands it is given: they are held to the same policy.
    ("x-batch commands=[{{\"execute\":\"qom-list\",\"arguments\":{{\"path\":\"/\"}}}},"
     "{{\"execute\":\"migrate\",\"arguments\":{{\"uri\":\"exec:touch {marker}\"}}}}]",
     "QMP command 'migrate' touches the host"),
])
def test_commands_that_touch_the_host_are_refused_at_their_line(sandbox: Sandbox, stock_riscv: Path,
                                                                 tmp_path: Path, line: str, needle: str) -> None:
    marker = tmp_path / "pwned"
    f = none_file(sandbox.base / "evil.qmp", "qom-list path=/machine\n" + line.format(marker=marker) + "\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert out.rc == 2, out.stderr
    assert out.stderr.startswith(f"{f}:6:1: {needle}"), out.stderr
    assert "hint: a board may not touch the host unless you allow it" in out.stderr
    assert "--allow-host-access" in out.stderr
    assert not marker.exists()
    sandbox.assert_clean()


@pytest.mark.parametrize("header,needle", [
    ("-M none -chardev file,id=log,path={marker} -preconfig", "chardev backend 'file' touches the host"),
    ("-M none,dumpdtb={marker} -preconfig", "machine property 'dumpdtb' touches the host"),
    ("-M none -serial file:{marker} -preconfig", "-serial file:"),
    ("-M none -D {marker} -preconfig", "QEMU option '-D' is not one machinedesc plan writes"),
    ("-M none -plugin {marker} -preconfig", "QEMU option '-plugin'"),
])
def test_header_options_that_touch_the_host_are_refused(sandbox: Sandbox, stock_riscv: Path, tmp_path: Path,
                                                        header: str, needle: str) -> None:
    marker = tmp_path / "pwned"
    f = none_file(sandbox.base / "evil.qmp", "x-exit-preconfig\n", header.format(marker=marker))
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert out.rc == 2, out.stderr
    assert out.stderr.startswith(f"{f}:3:1: ") and needle in out.stderr, out.stderr
    assert not marker.exists()
    sandbox.assert_clean()


def test_allow_host_access_lets_a_trusted_file_run(sandbox: Sandbox, stock_riscv: Path, tmp_path: Path) -> None:
    log = tmp_path / "chardev.log"
    f = none_file(sandbox.base / "trusted.qmp", "x-exit-preconfig\nquit\n",
                  f"-M none -nodefaults -display none -chardev file,id=log,path={log} -preconfig")
    refused = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert refused.rc == 2 and not log.exists()
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--allow-host-access"))
    assert out.rc in (0, 5), out.stderr  # quit ends QEMU before or after its reply
    assert log.exists()
    sandbox.assert_clean()


# --- human-monitor-command reports errors in its reply text --------------------

@pytest.mark.parametrize("command,needle", [
    ("nosuch", "HMP error: unknown command: 'nosuch'"),
    ("device_del nope", "HMP error: Error: Device 'nope' not found"),
    ("system_reset extra", "HMP error: system_reset: extraneous characters at the end of line"),
])
def test_failed_human_monitor_command_is_a_step_failure(sandbox: Sandbox, stock_riscv: Path,
                                                        command: str, needle: str) -> None:
    f = none_file(sandbox.base / "hmp.qmp", f'x-exit-preconfig\nhuman-monitor-command command-line="{command}"\n')
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--allow-host-access"))
    assert out.rc == 4, out.stderr
    assert out.stderr.startswith(f"{f}:6:1: step 2/2 failed\n"), out.stderr
    assert needle in out.stderr
    sandbox.assert_clean()


def test_successful_human_monitor_command_passes(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "hmp.qmp", firmware / "riscv64-hello.elf")
    f.write_text(f.read_text().replace("x-exit-preconfig\n",
                                       'x-exit-preconfig\nhuman-monitor-command command-line="info version"\n'))
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--allow-host-access"))
    assert out.rc == 0, out.stderr
    sandbox.assert_clean()


# --- nothing left behind --------------------------------------------------------

@pytest.mark.parametrize("args", [["-daemonize"], ["--daemonize"], ["-pidfile", "x.pid"],
                                  ["-run-with", "chroot=/"]])
def test_options_that_detach_qemu_are_refused(sandbox: Sandbox, stock_riscv: Path, args: list[str]) -> None:
    f = none_file(sandbox.base / "a.qmp", "x-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--", *args))
    assert out.rc == 2, out.stderr
    assert out.stderr.startswith(f"machinedesc: QEMU option '{args[0]}' is not allowed"), out.stderr
    assert "hint: to leave QEMU running in the background use --detach" in out.stderr
    assert not sandbox.qemu_pids()
    sandbox.assert_clean()


def test_detaching_option_in_the_header_is_refused_even_when_trusted(sandbox: Sandbox, stock_riscv: Path) -> None:
    f = none_file(sandbox.base / "a.qmp", "x-exit-preconfig\n", "-M none -daemonize -preconfig")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--allow-host-access", "--detach",
                                        "--serial", "none"))
    assert out.rc == 2, out.stderr
    assert out.stderr.startswith(f"{f}:3:1: QEMU option '-daemonize' is not allowed: QEMU would fork into the "
                                 "background"), out.stderr
    assert "hint: to leave QEMU running in the background use --detach" in out.stderr
    sandbox.assert_clean()


def test_directory_of_a_sigkilled_machinedesc_is_reaped_by_the_next_run(sandbox: Sandbox, stock_riscv: Path,
                                                                        firmware: Path) -> None:
    slow = none_file(sandbox.base / "slow.qmp", "qom-list path=/machine\n" * 20000 + "x-exit-preconfig\n")
    proc = sandbox.start(sandbox.argv_run(str(slow), "--qemu", str(stock_riscv), "-v"))
    err = StderrWatcher(proc)
    err.wait_for('"qom-list"', count=20)
    qemu = sandbox.wait_qemu()
    proc.kill()
    proc.wait(10)
    err.finish()
    proc.communicate()
    left = [p for p in sandbox.tmp.iterdir() if p.name.startswith("machinedesc-")]
    assert len(left) == 1 and (left[0] / "owner").read_text().split()[0] == str(proc.pid)
    # A directory being set up (no owner yet) and one of a live process are left alone.
    fresh = sandbox.tmp / "machinedesc-fresh"
    fresh.mkdir()
    live = sandbox.tmp / "machinedesc-live"
    live.mkdir()
    (live / "owner").write_text(f"{os.getpid()}\n")
    out = sandbox.call(sandbox.argv_run(str(virt_file(sandbox.base / "ok.qmp", firmware / "riscv64-hello.elf")),
                                        "--qemu", str(stock_riscv)))
    assert out.rc == 0, out.stderr
    assert sorted(p.name for p in sandbox.tmp.iterdir()) == ["machinedesc-fresh", "machinedesc-live"]
    assert qemu not in sandbox.qemu_pids()
    fresh.rmdir()
    (live / "owner").unlink()
    live.rmdir()
    sandbox.assert_clean()


def test_detached_directory_is_never_reaped(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "a.qmp", firmware / "riscv64-hello.elf")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--detach"))
    assert out.rc == 0, out.stderr
    info = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    directory = Path(info["directory"].split(" (")[0])
    assert "(remove it after QEMU exits)" in info["directory"]
    deadline = time.monotonic() + 20
    while sandbox.qemu_pids() and time.monotonic() < deadline:
        time.sleep(0.05)  # the guest powers off by itself
    again = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert again.rc == 0, again.stderr
    assert directory.is_dir(), "the user removes a --detach directory, not the next run"
    subprocess.run(["rm", "-r", str(directory)], check=True)
    sandbox.assert_clean()


# --- a console that cannot be written ---------------------------------------------

def test_console_to_a_full_device_is_an_error(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "a.qmp", firmware / "riscv64-hello.elf")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--serial", "file:/dev/full"))
    assert out.rc == 6, out.stderr
    assert out.stderr == ("machinedesc: cannot write the guest console to file:/dev/full: No space left on device; "
                          "QEMU was stopped, console output was lost\n")
    sandbox.assert_clean()


def test_console_on_a_full_stdout_is_an_error(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "a.qmp", firmware / "riscv64-hello.elf")
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)), stdin=subprocess.DEVNULL,
                              stdout=full, stderr=subprocess.PIPE, env=sandbox.env, cwd=str(sandbox.base),
                              timeout=60, check=False)
    assert proc.returncode == 6, proc.stderr
    assert b"cannot write the guest console to standard output: No space left on device" in proc.stderr
    sandbox.assert_clean()


def test_console_to_a_full_file_system_is_an_error(sandbox: Sandbox, stock_riscv: Path, firmware: Path,
                                                   tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "small", "size=64k") as mnt:
        subprocess.run(["dd", "if=/dev/zero", f"of={mnt / 'fill'}", "bs=4k"], capture_output=True, check=False)
        f = virt_file(sandbox.base / "a.qmp", firmware / "riscv64-hello.elf")
        out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--serial",
                                            f"file:{mnt / 'console.log'}"))
    assert out.rc == 6, out.stderr
    assert "No space left on device" in out.stderr
    sandbox.assert_clean()


def test_console_file_that_cannot_be_opened_is_a_usage_error(sandbox: Sandbox, stock_riscv: Path,
                                                             firmware: Path, tmp_path: Path) -> None:
    f = virt_file(sandbox.base / "a.qmp", firmware / "riscv64-hello.elf")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--serial",
                                        f"file:{tmp_path / 'missing' / 'c.log'}"))
    assert out.rc == 2, out.stderr
    assert out.stderr.startswith("machinedesc: cannot write --serial file ") and "No such file" in out.stderr
    sandbox.assert_clean()


def test_console_file_gets_the_guest_output(sandbox: Sandbox, stock_riscv: Path, firmware: Path,
                                            tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    f = virt_file(sandbox.base / "a.qmp", firmware / "riscv64-hello.elf")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--serial", f"file:{log}"))
    assert out.rc == 0, out.stderr
    assert [ln.strip() for ln in log.read_text().splitlines() if ln.strip()] == LINES
    sandbox.assert_clean()


# --- exit statuses -------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "-inf"])
def test_timeout_must_be_finite_and_positive(sandbox: Sandbox, stock_riscv: Path, value: str) -> None:
    f = none_file(sandbox.base / "a.qmp", "x-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--timeout", value))
    assert out.rc == 2, out.stderr
    assert "Invalid value for '--timeout': must be a positive number of seconds" in out.stderr
    sandbox.assert_clean()


def test_garbage_greeting_is_reported_as_such(sandbox: Sandbox, tmp_path: Path) -> None:
    fake = tmp_path / "qemu-system-riscv64"
    fake.write_text(f"#!{sys.executable}\n"
                    "import re, socket, sys, time\n"
                    # machinedesc's own monitor: a socket connected before we start.
                    "fd = next(int(m.group(1)) for a in sys.argv if a.startswith('socket,id=machinedesc-qmp,')\n"
                    "          for m in [re.search(r'fd=(\\d+)', a)] if m)\n"
                    "conn = socket.socket(fileno=fd)\n"
                    "conn.sendall(b'SSH-2.0-OpenSSH_9.2\\r\\n')\n"
                    "time.sleep(60)\n")
    fake.chmod(0o755)
    f = none_file(sandbox.base / "a.qmp", "x-exit-preconfig\n")
    start = time.monotonic()
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(fake), "--timeout", "5"))
    assert out.rc == 5, out.stderr
    assert time.monotonic() - start < 5
    assert f"machinedesc: {fake} (pid " in out.stderr
    assert "did not greet like a QEMU QMP server" in out.stderr and "SSH-2.0-OpenSSH_9.2" in out.stderr
    assert "before QMP was up" not in out.stderr
    sandbox.assert_clean()


def test_sigkilled_run_leaves_no_qemu(sandbox: Sandbox, stock_riscv: Path) -> None:
    """PR_SET_PDEATHSIG: QEMU dies with machinedesc (its directory is for the next run to reap)."""
    slow = none_file(sandbox.base / "slow.qmp", "qom-list path=/machine\n" * 20000 + "x-exit-preconfig\n")
    proc = sandbox.start(sandbox.argv_run(str(slow), "--qemu", str(stock_riscv), "-v"))
    err = StderrWatcher(proc)
    err.wait_for('"qom-list"', count=20)
    qemu = sandbox.wait_qemu()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    err.finish()
    proc.communicate()
    deadline = time.monotonic() + 10
    while qemu in sandbox.qemu_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert qemu not in sandbox.qemu_pids()
