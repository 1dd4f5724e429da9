"""Benchmark: Debian's firmware and kernel on the catalog boards and on QEMU's built-in ``-M virt``, side by side.

Prints figures, asserts nothing. For each scenario, the same images boot on

* the board, through ``machinedesc apply BOARD --bios/--kernel ...`` (the
  whole command: Python start, planning or the plan cache, QEMU over QMP,
  the generated device tree), and
* ``qemu-system-<arch> -M virt`` with the same images and the same (patched)
  binary, the machine QEMU builds in C,

and the time from starting the command to each console milestone is taken
from the serial console (a unix socket both wait on before the guest runs,
so no byte is lost), as medians over ``--runs`` alternating runs, with the
ratio board / virt. U-Boot's autoboot countdown is interrupted with a key as
soon as it shows, so the prompt comes at once on both.

Scenarios (skipped when their images are missing; scripts/install.sh
installs them):

* riscv: OpenSBI ``fw_jump.bin`` + U-Boot ``qemu-riscv64_smode``,
  boards/riscv-virt.yaml vs ``-M virt -smp 2 -m 128M``: first byte, OpenSBI
  banner, U-Boot banner, U-Boot prompt;
* arm64-uboot: U-Boot ``qemu_arm64``, boards/arm64-virt.yaml vs ``-M
  virt,gic-version=3 -cpu cortex-a57 -smp 2 -m 128M``: first byte, U-Boot
  banner, prompt;
* arm64-linux: Debian's cloud kernel, the same two machines: first byte,
  "Booting Linux", the PL011 console, the root fs message (no initrd, so
  Linux stops there; with an initrd it would be "Run /init").

Usage:  python3 bench/boot_compare.py [--runs N] [--only SCENARIO] [--qemu-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OPENSBI = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin")
UBOOT_RISCV = Path("/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin")
UBOOT_ARM64 = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")
KERNEL_ARM64 = REPO / "build" / "guest" / "vmlinuz-cloud-arm64"
AUTOBOOT = b"Hit any key to stop autoboot"


@dataclass(frozen=True)
class Scenario:
    name: str
    system: str
    board: str
    images: tuple[tuple[str, Path], ...]  # (QEMU option without dashes, file)
    virt: tuple[str, ...]  # -M virt's machine options
    milestones: tuple[tuple[str, str], ...]  # (name, regex over the console bytes); "" = first byte
    append: str = ""
    timeout: float = 240.0


SCENARIOS = [
    Scenario("riscv", "riscv64", "riscv-virt.yaml", (("bios", OPENSBI), ("kernel", UBOOT_RISCV)),
             ("-M", "virt", "-smp", "2", "-m", "128M"),
             (("first byte", ""), ("OpenSBI banner", r"OpenSBI v"), ("U-Boot banner", r"U-Boot 20"),
              ("U-Boot prompt", r"\n=> "))),
    Scenario("arm64-uboot", "aarch64", "arm64-virt.yaml", (("bios", UBOOT_ARM64),),
             ("-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-smp", "2", "-m", "128M"),
             (("first byte", ""), ("U-Boot banner", r"U-Boot 20"), ("U-Boot prompt", r"\n=> "))),
    Scenario("arm64-linux", "aarch64", "arm64-virt.yaml", (("kernel", KERNEL_ARM64),),
             ("-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-smp", "2", "-m", "128M"),
             (("first byte", ""), ("Booting Linux", r"Booting Linux on physical CPU"),
              ("PL011 console", r"ttyAMA0 at MMIO 0x9000000"),
              ("root fs / Run /init", r"VFS: Unable to mount root fs|Run /init")),
             append="console=ttyAMA0"),
]


def patched(system: str, qemu_dir: str | None) -> Path:
    if qemu_dir:
        return Path(qemu_dir) / f"qemu-system-{system}"
    from machinedesc.qemu.build import patched_binary

    found = patched_binary(system)
    if found is None:
        raise SystemExit(f"the patched qemu-system-{system} is not built (machinedesc qemu build)")
    return found


def board_argv(s: Scenario, qemu: Path, sock: Path) -> list[str]:
    argv = [sys.executable, "-c", "import sys; from machinedesc.cli import main; main(sys.argv[1:])",
            "apply", str(REPO / "boards" / s.board), "--qemu", str(qemu), "--serial", f"socket:{sock}"]
    for option, path in s.images:
        argv += [f"--{option}", str(path)]
    if s.append:
        argv += ["--append", s.append]
    return argv


def virt_argv(s: Scenario, qemu: Path, sock: Path) -> list[str]:
    argv = [str(qemu), *s.virt, "-nodefaults", "-no-user-config", "-display", "none",
            "-chardev", f"socket,id=con,path={sock},server=on,wait=on", "-serial", "chardev:con"]
    for option, path in s.images:
        argv += [f"-{option}", str(path)]
    if s.append:
        argv += ["-append", s.append]
    return argv


def connect(sock: Path, proc: subprocess.Popen[bytes], deadline: float) -> socket.socket:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before its console existed")
        if sock.exists():
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                client.connect(str(sock))
                return client
            except OSError:
                client.close()
        time.sleep(0.002)
    raise RuntimeError("no console socket")


def one_run(s: Scenario, argv: list[str], sock: Path, env: dict[str, str]) -> dict[str, float]:
    """Seconds from start to each milestone (missing ones are absent)."""
    t0 = time.monotonic()
    deadline = t0 + s.timeout
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env, start_new_session=True)
    seen: dict[str, float] = {}
    buf = b""
    keyed = False
    client = None
    try:
        client = connect(sock, proc, deadline)
        while len(seen) < len(s.milestones) and time.monotonic() < deadline:
            ready, _, _ = select.select([client], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            chunk = client.recv(65536)
            if not chunk:
                break
            now = time.monotonic() - t0
            buf += chunk
            for name, pattern in s.milestones:
                if name not in seen and (not pattern or re.search(pattern.encode(), buf)):
                    seen[name] = now
            if not keyed and AUTOBOOT in buf:
                client.sendall(b"\r")  # stop U-Boot's countdown: the prompt comes at once
                keyed = True
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            # machinedesc: Ctrl-C (it stops its QEMU); QEMU: SIGTERM.
            os.killpg(proc.pid, signal.SIGINT if argv[0] == sys.executable else signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    return seen


def run_scenario(s: Scenario, runs: int, qemu_dir: str | None) -> None:
    missing = [str(p) for _, p in s.images if not p.is_file()]
    if missing:
        print(f"\n{s.name}: skipped, missing {', '.join(missing)} (scripts/install.sh)")
        return
    qemu = patched(s.system, qemu_dir)
    times: dict[str, dict[str, list[float]]] = {"board": {}, "virt": {}}
    work = Path(tempfile.mkdtemp(prefix="md-bootcmp-", dir="/tmp"))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        for k in range(runs):
            for kind in ("board", "virt"):  # alternating, so load changes hit both alike
                sock = work / f"{kind}{k}.sock"
                argv = board_argv(s, qemu, sock) if kind == "board" else virt_argv(s, qemu, sock)
                for name, t in one_run(s, argv, sock, env).items():
                    times[kind].setdefault(name, []).append(t)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{s.name}: {', '.join(f'--{o} {p.name}' for o, p in s.images)}; board {s.board} vs "
          f"{' '.join(s.virt)}; median of {runs}")
    print(f"  {'milestone':<22} {'board (s)':>10} {'-M virt (s)':>12} {'ratio':>7}")
    for name, _ in s.milestones:
        b, v = times["board"].get(name, []), times["virt"].get(name, [])
        bm = statistics.median(b) if len(b) == runs else None
        vm = statistics.median(v) if len(v) == runs else None
        ratio = f"{bm / vm:7.2f}" if bm is not None and vm else "      -"
        fb = f"{bm:10.3f}" if bm is not None else f"{'missed':>10}"
        fv = f"{vm:12.3f}" if vm is not None else f"{'missed':>12}"
        print(f"  {name:<22} {fb} {fv} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--qemu-dir", help="directory with the qemu-system-* binaries (default: the patched build)")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    for s in SCENARIOS:
        if args.only in (None, s.name):
            run_scenario(s, args.runs, args.qemu_dir)


if __name__ == "__main__":
    main()
