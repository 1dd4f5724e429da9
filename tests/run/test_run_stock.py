"""`machinedesc run` against real stock QEMU 10.0: success, serial redirection, detach, connect, faults.

Stock QEMU has -preconfig and x-exit-preconfig, which is enough for QMP
files without phase markers; every failure path is proven to leave no QEMU
process and no private directory behind.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from harness import Sandbox, StderrWatcher, qmp_cont, qmp_quit, read_until, wait_gone
from qemu.qmp import QMPClient
from user_qemu import start_user_qemu

LINES = ["hello from hart 0", "hello from hart 1", "hello from timer interrupt"]


def virt_file(path: Path, elf: Path, extra: str = "", body: str = "x-exit-preconfig\n") -> Path:
    path.write_text(
        "# a QMP configuration file for QEMU's own -M virt\n"
        "# system: riscv64\n"
        f"# qemu: qemu-system-riscv64 -M virt -smp 2 -bios {elf} -nodefaults -display none "
        f"-chardev stdio,id=serial0 -serial chardev:serial0 {extra}-preconfig\n"
        "\n" + body)
    return path


def none_file(path: Path, body: str) -> Path:
    path.write_text("# system: riscv64\n"
                    "# qemu: qemu-system-riscv64 -M none -nodefaults -display none -preconfig\n"
                    + body)
    return path


def lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def test_run_boots_firmware_and_exits_0(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "virt.qmp", firmware / "riscv64-hello.elf")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert out.rc == 0, out.stderr
    assert lines(out.stdout) == LINES
    assert out.stderr == ""  # quiet in pipes
    sandbox.assert_clean()


def test_verbose_echoes_commands_and_replies(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "virt.qmp", firmware / "riscv64-hello.elf",
                  body="qom-get path=/machine property=type\nx-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "-v"))
    assert out.rc == 0, out.stderr
    assert '-> {"execute": "qom-get", "arguments": {"path": "/machine", "property": "type"}}' in out.stderr
    assert '<- {"return": "virt-machine"}' in out.stderr
    assert '-> {"execute": "cont"}' in out.stderr
    sandbox.assert_clean()


@pytest.mark.parametrize("kind", ["file", "none"])
def test_serial_redirection(kind: str, sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "virt.qmp", firmware / "riscv64-hello.elf")
    log = sandbox.base / "uart.log"
    spec = f"file:{log}" if kind == "file" else "none"
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--serial", spec))
    assert out.rc == 0, out.stderr
    assert out.stdout == ""
    if kind == "file":
        assert lines(log.read_text()) == LINES
    sandbox.assert_clean()


def test_detach_paused_with_serial_socket(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "virt.qmp", firmware / "riscv64-hello.elf")
    uart = sandbox.base / "uart.sock"
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--detach", "--paused",
                                        "--serial", f"socket:{uart}"))
    assert out.rc == 0, out.stderr
    info = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    pid, qmp = int(info["pid"]), info["qmp"]
    assert os.path.exists(qmp) and (os.stat(os.path.dirname(qmp)).st_mode & 0o777) == 0o700
    assert sandbox.qemu_pids() == [pid]
    # Paused: nothing printed until we connect to the UART and continue the CPUs.
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(uart))
        qmp_cont(qmp, expect_status="prelaunch")
        s.settimeout(20)
        data = b""
        while b"timer interrupt" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert lines(data.decode()) == LINES
    wait_gone(pid)  # the firmware powered the machine off
    shutil.rmtree(info["directory"].split(" (")[0])
    sandbox.assert_clean()


def test_ctrl_c_while_guest_runs_exits_130(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "virt.qmp", firmware / "riscv64-hello-nopoweroff.elf")
    proc = sandbox.start(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert proc.stdout is not None
    got = read_until(proc.stdout.fileno(), b"timer interrupt")
    assert lines(got.decode()) == LINES
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted (SIGINT)" in err.decode()
    sandbox.assert_clean()


def test_connect_never_kills_the_users_qemu(sandbox: Sandbox, stock_riscv: Path, tmp_path: Path) -> None:
    sock = tmp_path / "user-qmp.sock"
    user = start_user_qemu([str(stock_riscv), "-M", "none", "-nodefaults", "-display", "none", "-S", "-preconfig"],
                           sock, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        bad = none_file(tmp_path / "bad.qmp", "object-add qom-type=memory-backend-ram id=m0 size=x\n"
                        "object-add qom-type=memory-backend-ram id=after size=4096\n")
        out = sandbox.call(sandbox.argv_run(str(bad), "--connect", str(sock)))
        assert out.rc == 4, out.stderr
        assert user.poll() is None, "a failing step must not kill a QEMU we did not start"

        async def objects() -> list[str]:
            client = QMPClient("test")
            await client.connect(str(sock))
            props = await client.execute("qom-list", {"path": "/objects"})
            await client.disconnect()
            assert isinstance(props, list)
            return [p["name"] for p in props]
        # In a QEMU we only connected to, nothing after the failing line was sent.
        assert "after" not in asyncio.run(objects())
        good = none_file(tmp_path / "good.qmp", "object-add qom-type=memory-backend-ram id=m1 size=4096\n"
                         "x-exit-preconfig\n")
        out = sandbox.call(sandbox.argv_run(str(good), "--connect", str(sock)))
        assert out.rc == 0, out.stderr
        assert user.poll() is None
        for flag in (["--detach"], ["--paused"], ["--qemu", str(stock_riscv)]):
            out = sandbox.call(sandbox.argv_run(str(good), "--connect", str(sock), *flag))
            assert out.rc == 2 and "cannot be used with --connect" in out.stderr
        qmp_quit(str(sock))
        assert user.wait(10) == 0
    finally:
        if user.poll() is None:
            user.kill()
        user.communicate()
    sandbox.assert_clean()


# --- failure paths: exit code, message, and nothing left behind --------------

def test_failing_step_names_file_line_and_qemu_error(sandbox: Sandbox, stock_riscv: Path) -> None:
    f = none_file(sandbox.base / "bad.qmp",
                  "object-add qom-type=memory-backend-ram id=m0 size=4096\n"
                  "# the next line is wrong\n"
                  "object-add qom-type=memory-backend-ram id=m1 size=lots\n"
                  "x-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert out.rc == 4, out.stderr
    first = out.stderr.splitlines()[0]
    assert first == f"{f}:5:1: step 2/3 failed"
    assert "  object-add qom-type=memory-backend-ram id=m1 size=lots" in out.stderr
    assert "QEMU error GenericError: " in out.stderr and "size" in out.stderr
    sandbox.assert_clean()


def test_failure_inside_the_pipeline_reports_the_first_failing_line(
        stock_riscv: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process, so that qemu.qmp's own debug log shows what really went over the socket.
    from machinedesc.apply.configurator import run
    from machinedesc.apply.job import Options
    from machinedesc.errors import StepError
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    caplog.set_level(logging.DEBUG, logger="qemu.qmp")
    body = ("qom-list path=/machine\n" * 3 + "qom-list path=/no/such/object\n"
            + "qom-list path=/machine\n" * 20 + "x-exit-preconfig\n")
    f = none_file(tmp_path / "bad.qmp", body)
    with pytest.raises(StepError) as err:
        run(f, Options(qemu=str(stock_riscv), stdout=io.BytesIO(), stderr=io.StringIO()))
    assert str(err.value).startswith(f"{f}:6:1: step 4/25 failed")
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--> ")]
    listed = sum('"qom-list"' in m for m in sent)
    assert listed > 4, "commands behind the failing one were already in flight (pipelined)"
    caplog.clear()
    # The failing step right before a transition: the transition must not have been sent.
    f = none_file(tmp_path / "bad2.qmp", "qom-list path=/machine\n" * 3 + "qom-list path=/no/such/object\n"
                  "x-exit-preconfig\n")
    with pytest.raises(StepError) as err:
        run(f, Options(qemu=str(stock_riscv), stdout=io.BytesIO(), stderr=io.StringIO()))
    assert str(err.value).startswith(f"{f}:6:1: step 4/5 failed")
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--> ")]
    assert sum('"qom-list"' in m for m in sent) == 4
    assert not any('"x-exit-preconfig"' in m for m in sent), "a transition waits for every earlier step"
    caplog.clear()
    # Likewise any command that may act outside the machine (here object-add).
    f = none_file(tmp_path / "bad3.qmp", "qom-list path=/machine\n" * 3 + "qom-list path=/no/such/object\n"
                  "object-add qom-type=memory-backend-ram id=after size=4096\nx-exit-preconfig\n")
    with pytest.raises(StepError):
        run(f, Options(qemu=str(stock_riscv), stdout=io.BytesIO(), stderr=io.StringIO()))
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--> ")]
    assert sum('"qom-list"' in m for m in sent) == 4
    assert not any('"object-add"' in m for m in sent), "a non-machine command waits for every earlier step"
    assert not list(private.iterdir())


def test_malformed_file_exits_2_before_starting_qemu(sandbox: Sandbox, stock_riscv: Path) -> None:
    f = none_file(sandbox.base / "bad.qmp", "qom-list path\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert out.rc == 2
    assert out.stderr.startswith(f"{f}:3:10: expected key=value, got 'path'")
    sandbox.assert_clean()


def test_phase_markers_need_the_patched_qemu_exit_3(sandbox: Sandbox, stock_riscv: Path) -> None:
    f = none_file(sandbox.base / "plan.qmp", "# phase: accel-created\nx-machine-init\n"
                  "# phase: initialized\nx-sysbus-mmio-map device=ram addr=0\nx-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert out.rc == 3, out.stderr
    assert re.search(rf"{re.escape(str(stock_riscv))} \(QEMU 10\.0\.\d+", out.stderr), out.stderr
    assert "missing QMP commands: query-machine-phase, x-machine-init, x-sysbus-mmio-map" in out.stderr
    assert "machinedesc qemu build" in out.stderr
    sandbox.assert_clean()


def test_qemu_that_cannot_start_exits_5_with_its_stderr(sandbox: Sandbox, stock_riscv: Path) -> None:
    f = sandbox.base / "broken.qmp"
    f.write_text("# system: riscv64\n# qemu: qemu-system-riscv64 -M no-such-machine -preconfig\n"
                 "x-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert out.rc == 5, out.stderr
    assert "no-such-machine" in out.stderr and "exited with status 1" in out.stderr
    sandbox.assert_clean()


def test_missing_binary_exits_3(sandbox: Sandbox, tmp_path: Path) -> None:
    f = none_file(tmp_path / "a.qmp", "x-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(tmp_path / "nope")))
    assert out.rc == 3 and "no such executable" in out.stderr
    sandbox.assert_clean()


def slow_file(path: Path, n: int = 20000) -> Path:
    """Many harmless commands, so a fault can be injected while they are being sent."""
    return none_file(path, "qom-list path=/machine\n" * n + "x-exit-preconfig\n")


def test_qemu_killed_during_run_exits_5(sandbox: Sandbox, stock_riscv: Path) -> None:
    proc = sandbox.start(sandbox.argv_run(str(slow_file(sandbox.base / "slow.qmp")),
                                          "--qemu", str(stock_riscv), "-v"))
    err = StderrWatcher(proc)
    err.wait_for('"qom-list"', count=50)
    os.kill(sandbox.wait_qemu(), signal.SIGKILL)
    assert proc.wait(20) == 5
    text = err.finish()
    assert "lost the QMP connection" in text and "was killed by SIGKILL" in text, text[-1500:]
    proc.communicate()
    sandbox.assert_clean()


def test_qemu_that_stops_answering_times_out_exit_5(sandbox: Sandbox, stock_riscv: Path) -> None:
    proc = sandbox.start(sandbox.argv_run(str(slow_file(sandbox.base / "slow.qmp")),
                                          "--qemu", str(stock_riscv), "--timeout", "1", "-v"))
    err = StderrWatcher(proc)
    err.wait_for('"qom-list"', count=50)
    qemu = sandbox.wait_qemu()
    os.kill(qemu, signal.SIGSTOP)
    start = time.monotonic()
    assert proc.wait(20) == 5
    assert time.monotonic() - start < 10
    text = err.finish()
    assert "did not answer 'qom-list' within 1 s" in text, text[-1500:]
    proc.communicate()
    sandbox.assert_clean()


def test_ctrl_c_during_run_exits_130(sandbox: Sandbox, stock_riscv: Path) -> None:
    proc = sandbox.start(sandbox.argv_run(str(slow_file(sandbox.base / "slow.qmp")),
                                          "--qemu", str(stock_riscv), "-v"))
    err = StderrWatcher(proc)
    err.wait_for('"qom-list"', count=50)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 130
    assert "interrupted (SIGINT)" in err.finish()
    proc.communicate()
    sandbox.assert_clean()


def test_capabilities_are_probed_once_per_binary(sandbox: Sandbox, stock_riscv: Path, tmp_path: Path) -> None:
    sandbox.env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    binary = tmp_path / "qemu-system-riscv64"
    shutil.copy2(stock_riscv, binary)
    f = none_file(sandbox.base / "a.qmp", "object-add qom-type=memory-backend-ram id=m0 size=4096\n"
                  "x-exit-preconfig\n")
    argv = sandbox.argv_run(str(f), "--qemu", str(binary), "--detach", "--serial", "none", "-v")

    def probed() -> bool:
        out = sandbox.call(argv)
        assert out.rc == 0, out.stderr
        pid = int(out.stdout.split("pid: ")[1].split()[0])
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        for d in sandbox.tmp.iterdir():
            shutil.rmtree(d)
        return '"query-qmp-schema"' in out.stderr

    assert probed()
    assert not probed()  # cached: keyed by the binary's path, size and mtime
    os.utime(binary, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert probed()  # a rebuilt binary is probed again
    sandbox.assert_clean()


def test_detach_logs_the_console_in_its_directory(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "virt.qmp", firmware / "riscv64-hello.elf")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--detach"))
    assert out.rc == 0, out.stderr
    info = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    wait_gone(int(info["pid"]))  # not paused: the firmware runs and powers off
    assert lines(Path(info["console serial0"]).read_text()) == LINES
    shutil.rmtree(info["directory"].split(" (")[0])
    sandbox.assert_clean()


def test_paused_waits_for_the_user_to_continue(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "virt.qmp", firmware / "riscv64-hello.elf")
    proc = sandbox.start(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--paused"))
    err = StderrWatcher(proc)
    err.wait_for("send 'cont'")
    m = re.search(r"QMP socket (\S+) ", err.text)
    assert m, err.text
    time.sleep(0.3)
    assert proc.poll() is None  # still waiting: the CPUs are stopped

    qmp_cont(m.group(1))
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.finish()
    assert lines(out.decode()) == LINES
    sandbox.assert_clean()


def test_progress_on_a_terminal(sandbox: Sandbox, stock_riscv: Path) -> None:
    import pty
    f = none_file(sandbox.base / "p.qmp", "qom-list path=/machine\n" * 6 + "x-exit-preconfig\n")
    master, slave = pty.openpty()
    argv = sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--detach", "--serial", "none")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=sandbox.env, cwd=str(sandbox.base))
    os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    pid = int(out.decode().split("pid: ")[1].split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    for d in sandbox.tmp.iterdir():
        shutil.rmtree(d)
    text = data.decode(errors="replace")
    assert "\r\x1b[K[-] step 3/7: qom-list path=/machine" in text, text
    assert "machinedesc: built " in text and "7 steps" in text
    sandbox.assert_clean()


def test_arguments_after_double_dash_reach_qemu(sandbox: Sandbox, stock_riscv: Path) -> None:
    f = none_file(sandbox.base / "a.qmp", "x-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--detach", "--paused",
                                        "--", "-name", "from-the-command-line"))
    assert out.rc == 0, out.stderr
    info = dict(line.split(": ", 1) for line in out.stdout.splitlines())

    async def name() -> object:
        client = QMPClient("test")
        await client.connect(info["qmp"])
        reply = await client.execute("query-name")
        await client.disconnect()
        return reply
    assert asyncio.run(name()) == {"name": "from-the-command-line"}
    qmp_quit(info["qmp"])
    wait_gone(int(info["pid"]))
    shutil.rmtree(info["directory"].split(" (")[0])
    sandbox.assert_clean()


def test_file_that_never_leaves_preconfig_is_a_step_failure(sandbox: Sandbox, stock_riscv: Path) -> None:
    f = none_file(sandbox.base / "a.qmp", "object-add qom-type=memory-backend-ram id=m0 size=4096\n")
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert out.rc == 4, out.stderr
    assert "does it end with x-exit-preconfig?" in out.stderr
    sandbox.assert_clean()


def test_deep_tmpdir_beyond_the_unix_socket_path_limit(tmp_path: Path, stock_riscv: Path, firmware: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    box = Sandbox(deep)
    assert len(str(box.tmp / "machinedesc-12345678" / "qmp.sock")) > 108
    f = virt_file(deep / "virt.qmp", firmware / "riscv64-hello.elf")
    try:
        out = box.call(box.argv_run(str(f), "--qemu", str(stock_riscv)))
        assert out.rc == 0, out.stderr
        assert lines(out.stdout) == LINES
        box.assert_clean()
    finally:
        box.kill_qemus()


def test_serial_socket_waits_for_a_client_before_the_cpus_run(sandbox: Sandbox, stock_riscv: Path,
                                                               firmware: Path) -> None:
    f = virt_file(sandbox.base / "virt.qmp", firmware / "riscv64-hello.elf")
    uart = sandbox.base / "uart.sock"
    proc = sandbox.start(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--serial", f"socket:{uart}"))
    err = StderrWatcher(proc)
    err.wait_for("waiting for a client on the console socket")
    time.sleep(0.3)
    assert proc.poll() is None
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(uart))
        s.settimeout(20)
        data = b""
        while b"timer interrupt" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert lines(data.decode()) == LINES  # nothing was lost: the CPUs waited for us
    assert proc.wait(20) == 0, err.finish()
    err.finish()
    proc.communicate()
    sandbox.assert_clean()


def test_qemu_dying_while_the_guest_runs_exits_5(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "virt.qmp", firmware / "riscv64-hello-nopoweroff.elf")
    proc = sandbox.start(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)))
    assert proc.stdout is not None
    got = read_until(proc.stdout.fileno(), b"timer interrupt")
    assert lines(got.decode()) == LINES  # the guest was running when QEMU was killed
    os.kill(sandbox.wait_qemu(), signal.SIGKILL)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 5, err
    assert "QEMU was killed by SIGKILL while the guest was running" in err.decode()
    sandbox.assert_clean()


def test_qemu_dying_with_the_cpus_paused_says_so(sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = virt_file(sandbox.base / "virt.qmp", firmware / "riscv64-hello-nopoweroff.elf")
    proc = sandbox.start(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--paused"))
    err = StderrWatcher(proc)
    err.wait_for("CPUs are paused")
    os.kill(sandbox.wait_qemu(), signal.SIGKILL)
    assert proc.wait(20) == 5
    text = err.finish()
    proc.communicate()
    assert "QEMU was killed by SIGKILL after the build, with the CPUs paused (--paused)" in text, text
    assert "while the guest was running" not in text
    sandbox.assert_clean()


def test_file_without_header_needs_qemu_and_takes_the_arguments_after_dashes(
        sandbox: Sandbox, stock_riscv: Path, firmware: Path) -> None:
    f = sandbox.base / "bare.qmp"
    f.write_text("x-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_run(str(f)))
    assert out.rc == 2 and "no '# qemu: ...' header" in out.stderr
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(stock_riscv), "--", "-M", "virt", "-smp", "2",
                                        "-bios", str(firmware / "riscv64-hello.elf"), "-nodefaults",
                                        "-display", "none", "-serial", "stdio"))
    assert out.rc == 0, out.stderr
    assert lines(out.stdout) == LINES
    sandbox.assert_clean()


def test_qemu_that_never_greets_times_out_and_its_process_group_is_killed(sandbox: Sandbox,
                                                                          tmp_path: Path) -> None:
    # A stand-in binary that never speaks QMP and leaves a child of its own behind.
    fake = tmp_path / "bin" / "qemu-system-riscv64"
    fake.parent.mkdir()
    child_pid = tmp_path / "child.pid"
    fake.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {child_pid}\nwait\n")
    fake.chmod(0o755)
    f = none_file(sandbox.base / "a.qmp", "x-exit-preconfig\n")
    start = time.monotonic()
    out = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(fake), "--timeout", "1"))
    assert out.rc == 5, out.stderr
    assert time.monotonic() - start < 15
    assert "no QMP greeting" in out.stderr and "within 1 s" in out.stderr
    wait_gone(int(child_pid.read_text()))  # killed with QEMU's process group
    sandbox.assert_clean()


def test_keys_typed_on_the_terminal_reach_the_console(sandbox: Sandbox, stock_riscv: Path) -> None:
    # QEMU's own human monitor on the console chardev stands in for a guest that reads its UART.
    import fcntl
    import pty
    import termios
    f = sandbox.base / "hmp.qmp"
    f.write_text("# system: riscv64\n# qemu: qemu-system-riscv64 -M none -nodefaults -display none "
                 "-chardev stdio,id=serial0 -mon chardev=serial0,mode=readline -preconfig\nx-exit-preconfig\n")
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)

    def controlling_terminal() -> None:  # runs in the child after setsid(): the pty becomes its terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    proc = subprocess.Popen(sandbox.argv_run(str(f), "--qemu", str(stock_riscv)), stdin=slave, stdout=slave,
                            stderr=subprocess.PIPE, env=sandbox.env, cwd=str(sandbox.base),
                            start_new_session=True, preexec_fn=controlling_terminal)

    def read_until(pattern: str, timeout: float = 20) -> str:
        data = b""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, data.decode(errors="replace")):
            assert time.monotonic() < deadline, data
            data += os.read(master, 4096)
        return data.decode(errors="replace")

    try:
        read_until(r"\(qemu\) ")
        time.sleep(0.2)  # apply has switched the terminal to cbreak mode by now
        os.write(master, b"info version\n")
        assert re.search(r"info version.*\n.*10\.0\.\d+", read_until(r"10\.0\.\d+"), re.S)
        os.write(master, b"\x03")  # Ctrl-C: SIGINT to machinedesc (QEMU is in its own session)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130, err
        after = termios.tcgetattr(slave)
        assert after[3] == before[3]  # local modes (ECHO, ICANON) restored
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        os.close(master)
        os.close(slave)
    sandbox.assert_clean()


def test_a_hang_up_that_was_ignored_stays_ignored(sandbox: Sandbox, stock_riscv: Path) -> None:
    """`nohup machinedesc run ...`: SIGHUP ignored by the caller must not end the run (it gave 129)."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # inherited across exec, as nohup does
    try:
        proc = sandbox.start(sandbox.argv_run(str(slow_file(sandbox.base / "slow.qmp", n=3000)),
                                              "--qemu", str(stock_riscv), "-v"))
    finally:
        signal.signal(signal.SIGHUP, previous)
    err = StderrWatcher(proc)
    err.wait_for('"qom-list"', count=50)
    proc.send_signal(signal.SIGHUP)
    # It goes on to the end (the machine then runs with no guest until stopped).
    err.wait_for('"x-exit-preconfig"', timeout=120)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 130
    text = err.finish()
    assert "interrupted (SIGINT)" in text and "SIGHUP" not in text
    proc.communicate()
    sandbox.assert_clean()
