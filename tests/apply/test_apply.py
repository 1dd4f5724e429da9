"""`machinedesc apply` end to end: real QEMU, real firmware, the real CLI, every failure path.

The capability test runs against Debian's stock QEMU 10.0; the others need
the patched QEMU (skipped loudly outside CI, failed under CI=true).  After
every test the sandbox proves that no QEMU process and no private socket
directory was left behind.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import REPO, Sandbox, StderrWatcher, qmp_quit, qom_tree, read_until, wait_gone
from user_qemu import start_user_qemu

from machinedesc.plan.pipeline import load_plan
from machinedesc.plan.steps import Check

SOC = REPO / "boards" / "soc.yaml"
RISCV_LINES = ["hello from hart 0", "hello from hart 1", "hello from timer interrupt"]

# Every catalog board that has a demo firmware: (board, system, firmware, expected UART lines).
CATALOG = [
    ("soc.yaml", "riscv64", "riscv64-hello.elf", RISCV_LINES),
    ("soc-4core.yaml", "riscv64", "riscv64-hello-4harts.elf",
     [f"hello from hart {i}" for i in range(4)] + ["hello from timer interrupt"]),
    ("seed-a72.yaml", "aarch64", "aarch64-hello.elf", ["hello from cpu 0", "hello from cpu 1"]),
    ("a72-dma.yaml", "aarch64", "aarch64-hello.elf", ["hello from cpu 0", "hello from cpu 1"]),
    ("riscv-virt.yaml", "riscv64", "riscv64-hello.elf", RISCV_LINES),
    ("arm64-virt.yaml", "aarch64", "aarch64-hello.elf", ["hello from cpu 0", "hello from cpu 1"]),
]
#: --set options a board needs for the demo firmware: arm64-virt starts its CPUs in the
#: flash (where -bios firmware goes); the demo is linked at the start of RAM.
CATALOG_SETS = {"arm64-virt.yaml": ["--set", "reset_vector=0x40000000"]}
#: Catalog boards without CPUs (nothing to boot): built, verified, then stopped.
NO_FIRMWARE = {"mutual-links.yaml"}
#: Boards applied by a test of their own: the FE310 has no power-off device (test_fe310_...).
APPLIED_APART = {"fe310.yaml"}


def test_every_applicable_catalog_board_is_applied_below() -> None:
    boards = {p.name for p in (REPO / "boards").glob("*.yaml")}
    assert boards - NO_FIRMWARE - APPLIED_APART == {board for board, *_ in CATALOG}


def test_fe310_runs_rv32_firmware_through_its_fragments(sandbox: Sandbox, firmware: Path,
                                                          request: pytest.FixtureRequest) -> None:
    """boards/fe310.yaml, plus the SiFive test device to power off, runs the rv32 demo firmware: its UART
    interrupt reaches the hart through the PLIC fragment and the range wiring, its timer through the CLINT one."""
    qemu = request.getfixturevalue("patched_riscv64")
    catalog = sandbox.base / "catalog"
    shutil.copytree(REPO / "boards", catalog)
    variant = catalog / "fe310-poweroff.yaml"
    variant.write_text("machinedesc: 1\nextends: fe310.yaml\n"
                       "components:\n  poweroff: {type: riscv.sifive.test, mmio: 0x100000}\n")
    out = sandbox.call(sandbox.argv_cli("apply", str(variant), "--qemu", str(qemu),
                                        "--firmware", str(firmware / "riscv32-fe310-hello.elf")))
    assert out.rc == 0, out.stderr
    assert lines(out.stdout) == ["hello from the fe310", "hello from plic source 3", "hello from timer interrupt"]
    sandbox.assert_clean()


@pytest.mark.parametrize("board", sorted(NO_FIRMWARE))
def test_catalog_board_without_firmware_is_built_and_verified(board: str, sandbox: Sandbox,
                                                               request: pytest.FixtureRequest) -> None:
    path = REPO / "boards" / board
    system = re.search(r"^system: (\w+)$", path.read_text(), re.M)
    assert system is not None
    qemu = request.getfixturevalue(f"patched_{system[1]}")
    proc = sandbox.start(sandbox.argv_cli("apply", str(path), "--qemu", str(qemu), "-v"))
    err = StderrWatcher(proc)
    err.wait_for("steps in")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 130
    text = err.finish()
    assert re.search(r"machinedesc: built board '[a-z-]+' \(.*\): \d+ steps in [0-9.]+ s, verified", text), text
    proc.communicate()
    sandbox.assert_clean()


def lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def big_board(path: Path, n: int = 1000) -> Path:
    """A generated board of ``n`` small sysbus devices, each mapped (2 steps per device)."""
    out = ["machinedesc: 1", "name: big", "summary: generated", "system: riscv64", "components:"]
    for i in range(n):
        out += [f"  dev{i}:", "    type: riscv.sifive.test", f"    mmio: {0x20000000 + i * 0x1000:#x}"]
    path.write_text("\n".join(out) + "\n")
    return path


# --- stock QEMU: the capability probe ---------------------------------------

def test_stock_qemu_fails_fast_with_exit_3(sandbox: Sandbox, stock_riscv: Path) -> None:
    out = sandbox.call(sandbox.argv_cli("apply", str(SOC), "--qemu", str(stock_riscv), "-v"))
    assert out.rc == 3, out.stderr
    msg = out.stderr
    assert re.search(rf"^machinedesc: {re.escape(str(stock_riscv))} \(QEMU 10\.0\.\d+ \(Debian",
                     msg, re.M), msg
    assert "cannot build board 'soc'" in msg
    assert "missing QMP commands: query-machine-phase, x-machine-init, x-sysbus-mmio-map" in msg
    assert "missing QMP arguments: device_add 'parent', device_add 'realized'" in msg
    assert "missing device types: sysbus-memory" in msg
    assert "machinedesc qemu build" in msg
    # Stock QEMU refuses the board's -smp 1,maxcpus=2 on -M none: the probe says why it matters.
    assert "QEMU did not even start: qemu-system-riscv64: Invalid SMP CPUs 2" in msg
    # Nothing was sent before the probe decided: no step reached QEMU.
    sent = re.findall(r'^-> \{"execute": "([^"]+)"', msg, re.M)
    assert not set(sent) & {"x-machine-init", "device_add", "qom-set", "x-sysbus-mmio-map"}, sent
    sandbox.assert_clean()


# --- the patched QEMU: success ----------------------------------------------

@pytest.mark.parametrize("board, system, elf, expected", CATALOG, ids=[c[0] for c in CATALOG])
def test_catalog_board_boots_its_firmware(board: str, system: str, elf: str, expected: list[str],
                                          sandbox: Sandbox, firmware: Path, request: pytest.FixtureRequest) -> None:
    qemu = request.getfixturevalue(f"patched_{system}")
    out = sandbox.call(sandbox.argv_cli("apply", str(REPO / "boards" / board), "--qemu", str(qemu),
                                        "--firmware", str(firmware / elf), *CATALOG_SETS.get(board, [])))
    assert out.rc == 0, out.stderr
    assert lines(out.stdout) == expected
    assert out.stderr == ""  # quiet when not on a terminal
    sandbox.assert_clean()


def test_ctrl_c_while_guest_runs_exits_130(sandbox: Sandbox, patched_riscv64: Path, firmware: Path) -> None:
    proc = sandbox.start(sandbox.argv_cli("apply", str(SOC), "--qemu", str(patched_riscv64),
                                          "--firmware", str(firmware / "riscv64-hello-nopoweroff.elf")))
    assert proc.stdout is not None
    got = read_until(proc.stdout.fileno(), b"timer interrupt")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert lines(got.decode()) == RISCV_LINES
    sandbox.assert_clean()


# --- failure paths -----------------------------------------------------------

def test_bad_property_value_names_the_yaml_line_exit_4(sandbox: Sandbox, patched_riscv64: Path,
                                                       tmp_path: Path) -> None:
    # validate now refuses an unknown property (the type database): give QEMU one
    # through the plan, to see how apply reports a property QEMU refuses.
    plan = load_plan(SOC)
    k, step = next((k, s) for k, s in enumerate(plan.steps)
                   if s.command == "device_add" and s.arguments.get("id") == "uart0")
    bad = dataclasses.replace(step, arguments={**step.arguments, "fifo-size": 16})
    plan = dataclasses.replace(plan, steps=(*plan.steps[:k], bad, *plan.steps[k + 1:]))
    line = SOC.read_text().splitlines().index("  uart0:") + 1
    out = sandbox.call(sandbox.argv_plan(plan, qemu=str(patched_riscv64)))
    assert out.rc == 4, out.stderr
    first = out.stderr.splitlines()[0]
    # The lead's loader shows board paths relative to the catalog (the board's directory).
    assert re.fullmatch(rf"(.*/)?soc\.yaml:{line}:3: step \d+/\d+ failed \(phase initialized\)",
                        first), out.stderr
    assert "  device_add driver=serial-mm id=uart0 " in out.stderr
    assert "QEMU error GenericError: " in out.stderr and "fifo-size" in out.stderr
    sandbox.assert_clean()


def test_unknown_property_is_exit_2_at_its_line_before_qemu(sandbox: Sandbox, patched_riscv64: Path,
                                                            tmp_path: Path) -> None:
    board = tmp_path / "soc.yaml"
    shutil.copytree(SOC.parent / "lib", tmp_path / "lib")  # the fragments soc.yaml uses
    text = SOC.read_text().replace("      regshift: 0\n", "      regshift: 0\n      fifo-size: 16\n")
    assert "fifo-size" in text
    board.write_text(text)
    line = text.splitlines().index("      fifo-size: 16") + 1
    out = sandbox.call(sandbox.argv_cli("apply", str(board), "--qemu", str(patched_riscv64)))
    assert out.rc == 2, out.stderr
    assert re.match(rf"(.*/)?soc\.yaml:{line}:7: components\.uart0\.props\.fifo-size: "
                    r"serial-mm has no property 'fifo-size'", out.stderr), out.stderr
    sandbox.assert_clean()


def test_qemu_side_realize_error_via_set(sandbox: Sandbox, patched_riscv64: Path) -> None:
    # A valid board whose parameter QEMU refuses at realize time: the timer needs a non-zero frequency.
    out = sandbox.call(sandbox.argv_cli("apply", str(SOC), "--qemu", str(patched_riscv64),
                                        "--set", "timebase_hz=0"))
    assert out.rc == 4, out.stderr
    # The timer comes from a fragment: its line there, and the line of soc.yaml that uses it.
    lib = SOC.parent / "lib" / "riscv-aclint-mtimer.yaml"
    line = lib.read_text().splitlines().index("  ${id}:") + 1
    assert re.match(rf"(.*/)?lib/riscv-aclint-mtimer\.yaml:{line}:3: step \d+/\d+ failed", out.stderr), out.stderr
    use = next(n for n, text in enumerate(SOC.read_text().splitlines(), 1) if "use: lib/riscv-aclint-mtimer" in text)
    assert re.search(rf"\n  included from (.*/)?soc\.yaml:{use}:10\n", out.stderr), out.stderr
    assert "riscv.aclint.mtimer" in out.stderr
    sandbox.assert_clean()


def test_verification_difference_is_exit_4_and_guest_never_runs(sandbox: Sandbox, patched_riscv64: Path,
                                                                 firmware: Path) -> None:
    plan = load_plan(SOC, {}, [firmware / "riscv64-hello.elf"])
    right = plan.links[0]
    wrong = dataclasses.replace(right, target=plan.links[1].target)
    plan = dataclasses.replace(plan, checks=(*plan.components, wrong, *plan.links[1:]))
    out = sandbox.call(sandbox.argv_plan(plan, qemu=str(patched_riscv64)))
    assert out.rc == 4, out.stderr
    assert "the machine QEMU built differs from the board" in out.stderr
    assert (f"{wrong.location}: link {wrong.path}.{wrong.prop} is '{right.target}', "
            f"the board says '{wrong.target}'") in out.stderr
    assert out.stdout == ""  # verified before the CPUs ran: the firmware never printed
    sandbox.assert_clean()


def _start_big(sandbox: Sandbox, qemu: Path, *extra: str) -> tuple[subprocess.Popen[bytes], StderrWatcher]:
    board = big_board(sandbox.base / "big.yaml")
    proc = sandbox.start(sandbox.argv_cli("apply", str(board), "--qemu", str(qemu), "-v", *extra))
    err = StderrWatcher(proc)
    err.wait_for('"device_add"', count=20)
    return proc, err


def test_qemu_killed_during_apply_exits_5(sandbox: Sandbox, patched_riscv64: Path) -> None:
    proc, err = _start_big(sandbox, patched_riscv64)
    os.kill(sandbox.wait_qemu(), signal.SIGKILL)
    assert proc.wait(20) == 5
    text = err.finish()
    assert "was killed by SIGKILL" in text, text[-1500:]
    # The step QEMU died on, with its board line.
    assert re.search(r"big\.yaml:\d+:\d+: step \d+/\d+ failed \(phase initialized\)\n.*\n"
                     r"(  step: .*\n)?  QEMU stopped during this step", text), text[-1500:]
    proc.communicate()
    sandbox.assert_clean()


def test_qemu_not_answering_times_out_exit_5(sandbox: Sandbox, patched_riscv64: Path) -> None:
    proc, err = _start_big(sandbox, patched_riscv64, "--timeout", "1")
    os.kill(sandbox.wait_qemu(), signal.SIGSTOP)
    assert proc.wait(20) == 5
    text = err.finish()
    assert re.search(r"QEMU did not answer '[a-z_-]+' within 1 s", text), text[-1500:]
    # The step, and what QEMU is: stopped, not "still running" (from the adversarial pass).
    assert re.search(r"big\.yaml:\d+:\d+: step \d+/\d+ failed \(phase initialized\)\n.*\n"
                     r"(  step: .*\n)?  QEMU did not answer this step\n", text), text[-1500:]
    assert "is stopped (by SIGSTOP, SIGTSTP or a debugger), not running" in text, text[-1500:]
    proc.communicate()
    sandbox.assert_clean()


def test_qemu_stopped_while_the_guest_runs_times_out_exit_5(sandbox: Sandbox, patched_riscv64: Path,
                                                            firmware: Path) -> None:
    proc = sandbox.start(sandbox.argv_cli("apply", str(SOC), "--qemu", str(patched_riscv64), "--timeout", "1",
                                          "--firmware", str(firmware / "riscv64-hello-nopoweroff.elf")))
    assert proc.stdout is not None
    read_until(proc.stdout.fileno(), b"timer interrupt")
    pid = sandbox.wait_qemu()
    os.kill(pid, signal.SIGSTOP)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 5, err
    assert (f"machinedesc: QEMU (pid {pid}) has been stopped for 1 s while the guest was running "
            "(step: run the guest, after 'cont'); giving up\n"
            "  QEMU is stopped (by SIGSTOP, SIGTSTP or a debugger), not running") in err.decode(), err
    sandbox.assert_clean()


def test_ctrl_c_during_apply_exits_130(sandbox: Sandbox, patched_riscv64: Path) -> None:
    proc, err = _start_big(sandbox, patched_riscv64)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 130
    assert "interrupted (SIGINT)" in err.finish()
    proc.communicate()
    sandbox.assert_clean()


# --- plan file: run and qmp-shell build the same machine as apply ------------

def _detached(out_text: str) -> tuple[int, str, str]:
    info = dict(line.split(": ", 1) for line in out_text.splitlines())
    return int(info["pid"]), info["qmp"], info["directory"].split(" (")[0]


def test_plan_file_run_and_qmp_shell_build_the_same_qom_tree(sandbox: Sandbox, patched_riscv64: Path,
                                                             firmware: Path, tmp_path: Path) -> None:
    elf = firmware / "riscv64-hello.elf"
    plan_file = tmp_path / "soc.qmp"
    out = sandbox.call(sandbox.argv_cli("plan", str(SOC), "--firmware", str(elf), "-o", str(plan_file)))
    assert out.rc == 0, out.stderr
    trees = {}
    for how in ("apply", "run"):
        argv = (sandbox.argv_cli("apply", str(SOC), "--firmware", str(elf)) if how == "apply"
                else sandbox.argv_cli("run", str(plan_file)))
        out = sandbox.call(argv + ["--qemu", str(patched_riscv64), "--detach", "--paused", "--serial", "none"])
        assert out.rc == 0, out.stderr
        pid, qmp, directory = _detached(out.stdout)
        trees[how] = qom_tree(qmp)
        qmp_quit(qmp)
        wait_gone(pid)
        shutil.rmtree(directory)

    # qemu.qmp's own qmp-shell reads the same file, started from the header's command line.
    from machinedesc.plan.qmpfile import load
    header = load(plan_file).qemu_argv
    assert header is not None
    sock = tmp_path / "shell.sock"
    qemu = start_user_qemu([str(patched_riscv64), *header[1:], "-S"], sock,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        shell = subprocess.run([sys.executable, "-m", "qemu.qmp.qmp_shell", str(sock)],
                               input=plan_file.read_text(), capture_output=True, text=True, timeout=60)
        # qmp-shell reports '#' comment lines as parse errors and skips them; commands must all succeed.
        assert '"error"' not in shell.stdout, shell.stdout
        assert shell.stdout.count('{"return": {}}') == sum(
            1 for ln in plan_file.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
        trees["qmp-shell"] = qom_tree(str(sock))
        qmp_quit(str(sock))
        qemu.wait(10)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.communicate()
    assert trees["apply"]["/machine/peripheral/cluster0/hart1"] == "rv64-riscv-cpu"
    assert trees["run"] == trees["apply"]
    assert trees["qmp-shell"] == trees["apply"]
    sandbox.assert_clean()


def test_connect_builds_in_a_user_started_qemu(sandbox: Sandbox, patched_riscv64: Path, firmware: Path,
                                               tmp_path: Path) -> None:
    from machinedesc.plan.qmpfile import load
    plan_file = tmp_path / "soc.qmp"
    elf = firmware / "riscv64-hello.elf"
    out = sandbox.call(sandbox.argv_cli("plan", str(SOC), "--firmware", str(elf), "-o", str(plan_file)))
    assert out.rc == 0, out.stderr
    header = load(plan_file).qemu_argv
    assert header is not None
    sock = tmp_path / "user.sock"
    user = start_user_qemu([str(patched_riscv64), *header[1:], "-S"], sock,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = sandbox.call(sandbox.argv_cli("apply", str(SOC), "--firmware", str(elf), "--connect", str(sock)))
        assert out.rc == 0, out.stderr
        assert user.poll() is None  # ours to run: apply built and verified it, then let go
        qmp_cont = [sys.executable, "-m", "qemu.qmp.qmp_shell", str(sock)]
        subprocess.run(qmp_cont, input="cont\n", capture_output=True, text=True, timeout=20, check=True)
        uart, err = user.communicate(timeout=20)
        assert user.returncode == 0, err
        assert lines(uart.decode()) == RISCV_LINES
    finally:
        if user.poll() is None:
            user.kill()
            user.communicate()
    sandbox.assert_clean()


# --- issue 8: bounded timeouts, HMP errors, boards that touch the host ----------

def test_timeout_bounds_a_hang_during_verification(sandbox: Sandbox, patched_riscv64: Path) -> None:
    """Eight pipelined checks timing out together once took 2 s + 8 x 0.5 s for --timeout 2."""
    board = big_board(sandbox.base / "big.yaml", n=3000)
    # Verification reads back only what the steps did not prove (apply/proven.py): checks that no
    # step answers (a link check of each device's realized property) make it read 3,000 values.
    plan = load_plan(board, {})
    plan = dataclasses.replace(plan, checks=tuple(Check.link(c.path, "realized", "elsewhere", c.location)
                                                  for c in plan.components))
    proc = sandbox.start(sandbox.argv_plan(plan, qemu=str(patched_riscv64), verbose=True, timeout=2.0))
    err = StderrWatcher(proc)
    err.wait_for('"property": "realized"', timeout=120)
    os.kill(sandbox.wait_qemu(), signal.SIGSTOP)
    stopped = time.monotonic()
    assert proc.wait(30) == 5
    elapsed = time.monotonic() - stopped
    text = err.finish()
    assert re.search(r"QEMU did not answer 'qom-get' within 2 s", text), text[-1500:]
    assert elapsed < 3.5, f"--timeout 2 took {elapsed:.1f} s"
    proc.communicate()
    sandbox.assert_clean()


def test_failed_hmp_command_in_a_board_is_exit_4_at_its_line(sandbox: Sandbox, patched_riscv64: Path,
                                                             tmp_path: Path) -> None:
    board = tmp_path / "soc.yaml"
    shutil.copytree(SOC.parent / "lib", tmp_path / "lib")  # the fragments soc.yaml uses
    text = SOC.read_text() + ("qmp:\n  hmp:\n    execute: human-monitor-command\n"
                              "    arguments: {command-line: nosuch}\n    phase: ready\n")
    board.write_text(text)
    refused = sandbox.call(sandbox.argv_cli("apply", str(board), "--qemu", str(patched_riscv64)))
    assert refused.rc == 2 and "--allow-host-access" in refused.stderr, refused.stderr
    out = sandbox.call(sandbox.argv_cli("apply", str(board), "--qemu", str(patched_riscv64), "--allow-host-access"))
    assert out.rc == 4, out.stderr
    line = text.splitlines().index("  hmp:") + 1
    assert re.match(rf"(.*/)?soc\.yaml:{line}:3: step \d+/\d+ failed \(phase ready\)", out.stderr), out.stderr
    assert "HMP error: unknown command: 'nosuch'" in out.stderr
    assert out.stdout == ""
    sandbox.assert_clean()
