"""`machinedesc import-dtb`: boards from device trees nobody here wrote, with a coverage report.

The trees are the ones QEMU's own ``-M virt`` dumps (``dumpdtb=``, made here
with the patched binaries): the imported boards match golden files (YAML and
report), validate, and run the firmware the built-in machine runs: Debian's
OpenSBI + U-Boot on riscv64, U-Boot (qemu_arm64) on aarch64, whose ``pci``
command finds the imported PCIe host bridge; Linux on the GICv2 board.
tests/data/dtb/mixed.dts covers every reason a node is skipped; the error
cases exit 2 with ``file:line:col``. Regenerate the goldens after an intended
change with MACHINEDESC_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import shutil
import re
import subprocess
from pathlib import Path

import pytest
from harness import REPO, Sandbox
from test_apply_windows import VIRT_PCIE_HOST
from test_boot_debian import (FIRMWARE_TIMEOUT, KERNEL_ARM64, LINUX_TIMEOUT, OPENSBI_DIR, UBOOT_ARM64, UBOOT_RISCV,
                              boot, need)

from machinedesc import api
from machinedesc.plan.pipeline import load_board, load_plan

GOLDEN = REPO / "tests" / "golden" / "import-dtb"
MIXED = REPO / "tests" / "data" / "dtb" / "mixed.dts"
#: The built-in machines whose trees are imported, as QEMU is asked for them.
DUMPS = {
    "riscv64-virt": ("riscv64", ["-M", "virt", "-smp", "2", "-bios", "none"]),
    "aarch64-virt": ("aarch64", ["-M", "virt,gic-version=3", "-cpu", "cortex-a57", "-smp", "2"]),
    # plain -M virt: its default gic-version, a GICv2 (arm_gic)
    "aarch64-virt-gicv2": ("aarch64", ["-M", "virt", "-cpu", "cortex-a57", "-smp", "2"]),
}
GOLDENS = ["aarch64-virt", "aarch64-virt-gicv2", "riscv64-virt"]
#: U-Boot's `pci` listing QEMU's host bridge (1b36:0008, the gpex root) at bus 0, device 0.
HOST_BRIDGE = r"00\.00\.00\s+0x1b36\s+0x0008\s+Bridge device"


def dump(qemu: Path, args: list[str], out: Path) -> Path:
    """QEMU's own device tree of ``-M virt`` (its dumpdtb= machine option), written to ``out``."""
    argv = [str(qemu), *args, "-nodefaults", "-display", "none"]
    machine = argv.index("-M") + 1
    argv[machine] += f",dumpdtb={out}"
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and out.is_file(), res.stderr
    return out


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MACHINEDESC_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with MACHINEDESC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{path} differs (MACHINEDESC_UPDATE_GOLDEN=1 to accept)"


def imported(sandbox: Sandbox, source: Path, board: str) -> tuple[Path, str]:
    """``import-dtb SOURCE -o BOARD`` in the sandbox (relative names: the report names them as given)."""
    res = sandbox.call(sandbox.argv_cli("import-dtb", os.path.relpath(source, sandbox.base), "-o", board))
    assert res.rc == 0, res.stderr
    return sandbox.base / board, res.stderr


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from harness import patched_qemu

    base = tmp_path_factory.mktemp("dumps")
    return {name: dump(patched_qemu(system), args, base / f"{name}.dtb") for name, (system, args) in DUMPS.items()}


@pytest.mark.parametrize("name", GOLDENS)
def test_qemu_virt_tree_imports_to_a_board_that_validates(name: str, dumps: dict[str, Path],
                                                          sandbox: Sandbox) -> None:
    source = sandbox.base / f"{name}.dtb"
    source.write_bytes(dumps[name].read_bytes())
    board, report = imported(sandbox, source, f"{name}.yaml")
    golden(f"{name}.yaml", board.read_text(encoding="utf-8"))
    golden(f"{name}.report", report)
    plan = load_plan(board)  # validates (BoardError otherwise) and plans
    assert plan.steps
    # Every node is counted: imported + folded + skipped = the nodes of the tree.
    total = int(re.search(r": (\d+) nodes\n", report)[1])  # type: ignore[index]
    counted = sum(int(n) for n in re.findall(r"^\s+(\d+) (?:nodes imported|folded|nodes skipped)", report, re.M))
    assert counted == total, report
    assert "skipped /fw-cfg@" in report and "no binding for qemu,fw-cfg-mmio yet" in report
    # The PCIe host: its ECAM and memory windows, its I/O region, INTA-INTD from interrupt-map.
    text = board.read_text(encoding="utf-8")
    assert re.search(r"^  pcie?: \{type: gpex-pcihost, mmio: \[\{region: 0, offset: 0, size: 0x10000000, ", text, re.M)
    assert re.search(r"from: \"pcie?\.sysbus-irq\[0\.\.3\]\", to: \"(intc|plic)\.unnamed-gpio-in\[\d+\.\.\d+\]\"",
                     text), text


def test_a_gicv2_tree_imports_with_its_interrupt_wiring(dumps: dict[str, Path], sandbox: Sandbox) -> None:
    board, report = imported(sandbox, dumps["aarch64-virt-gicv2"], "v2.yaml")
    plan = load_plan(board)
    text = board.read_text(encoding="utf-8")
    assert ("intc: {type: arm_gic, props: {revision: 2, num-cpu: 2, num-irq: 96}, "
            "mmio: [{region: 0, addr: 0x8000000}, {region: 1, addr: 0x8010000}]}") in text
    # IRQ..VFIQ to both CPUs, the timers and PMU of both on their PPIs (CPU 1's PMU: 64 + 32 + 16 + 7).
    assert 'intc-cpu-4: {count: 2, from: "intc.sysbus-irq[${6 + i}]", to: "cpu${i}.unnamed-gpio-in[3]"}' in text
    assert 'from: "cpu${i}.pmu-interrupt[0]", to: "intc.unnamed-gpio-in[${87 + i * 32}]"' in text
    assert "  skipped /intc@8000000/v2m@8020000: no binding for arm,gic-v2m-frame" in report
    assert "8 that the GIC implies" in report
    # The generated tree has the GICv2 and /timer with -M virt's CPU mask in the PPI flags.
    assert plan.steps


def test_imported_gicv2_virt_boots_linux(dumps: dict[str, Path], sandbox: Sandbox, patched_aarch64: Path) -> None:
    """The imported GICv2 carries interrupts: both CPUs up (IPIs), the timer, the PL011's SPI, the PCIe host's map."""
    kernel = need(KERNEL_ARM64, "the arm64 cloud kernel (linux-image-cloud-arm64)")
    board, _ = imported(sandbox, dumps["aarch64-virt-gicv2"], "virt.yaml")
    text = boot(sandbox, patched_aarch64, board, "--kernel", str(kernel), "--append", "console=ttyAMA0",
                until=r"VFS: Unable to mount root fs", timeout=LINUX_TIMEOUT)
    assert "smp: Brought up 1 node, 2 CPUs" in text, text
    assert re.search(r"arch_timer: cp15 timer\(s\) running at [0-9.]+MHz \(virt\)", text), text
    assert re.search(r"ttyAMA0 at MMIO 0x9000000 \(irq = [1-9][0-9]*, base_baud = 0\) is a PL011", text), text
    assert re.search(r"pci 0000:00:00\.0: \[1b36:0008\]", text), text


def test_imported_riscv_virt_runs_opensbi_and_uboot(dumps: dict[str, Path], sandbox: Sandbox,
                                                    patched_riscv64: Path) -> None:
    board, _ = imported(sandbox, dumps["riscv64-virt"], "virt.yaml")
    text = boot(sandbox, patched_riscv64, board, "--bios", str(need(OPENSBI_DIR / "fw_jump.bin", "opensbi")),
                "--kernel", str(need(UBOOT_RISCV, "u-boot-qemu")), until=r"\n=> ", timeout=FIRMWARE_TIMEOUT)
    assert re.search(r"Platform HART Count\s+: 2\n", text), text
    assert "Model: riscv-virtio,qemu" in text  # the imported root's model, in the generated tree
    assert "DRAM:  128 MiB" in text


def uboot_pci(board: Path, qemu: Path, boot_options: dict[str, str]) -> None:
    """U-Boot's prompt, then its `pci` command lists QEMU's host bridge: the ECAM window and ranges work."""
    with api.machine(board, boot=boot_options, qemu=qemu, timeout=60) as m:
        m.console.expect(r"\n=> ", timeout=FIRMWARE_TIMEOUT)
        m.console.sendline("pci")
        m.console.expect(HOST_BRIDGE, timeout=30)
        m.console.expect("=> ", timeout=30)


def test_imported_riscv_virt_pcie_host_is_found_by_uboot(dumps: dict[str, Path], sandbox: Sandbox,
                                                         patched_riscv64: Path) -> None:
    board, _ = imported(sandbox, dumps["riscv64-virt"], "virt.yaml")
    uboot_pci(board, patched_riscv64, {"bios": str(need(OPENSBI_DIR / "fw_jump.bin", "opensbi")),
                                       "kernel": str(need(UBOOT_RISCV, "u-boot-qemu"))})


@pytest.mark.parametrize("name", ["aarch64-virt", "aarch64-virt-gicv2"])
def test_imported_arm64_virt_pcie_host_is_found_by_uboot(name: str, dumps: dict[str, Path], sandbox: Sandbox,
                                                         patched_aarch64: Path) -> None:
    board, _ = imported(sandbox, dumps[name], "virt.yaml")
    uboot_pci(board, patched_aarch64, {"bios": str(need(UBOOT_ARM64, "u-boot-qemu"))})


@pytest.mark.parametrize("name", ["aarch64-virt", "aarch64-virt-gicv2"])
def test_imported_arm64_virt_runs_uboot(name: str, dumps: dict[str, Path], sandbox: Sandbox,
                                        patched_aarch64: Path) -> None:
    board, _ = imported(sandbox, dumps[name], "virt.yaml")
    text = boot(sandbox, patched_aarch64, board, "--bios", str(need(UBOOT_ARM64, "u-boot-qemu")),
                until=r"\n=> ", timeout=FIRMWARE_TIMEOUT)
    assert "U-Boot 20" in text
    assert "DRAM:  128 MiB" in text
    assert "In:    pl011@9000000" in text


def test_every_reason_to_skip_a_node_is_reported(sandbox: Sandbox) -> None:
    source = sandbox.base / "mixed.dts"  # the report names the file as given: the same name wherever the test runs
    source.write_text(MIXED.read_text(encoding="utf-8"), encoding="utf-8")
    board, report = imported(sandbox, source, "mixed.yaml")
    golden("mixed.yaml", board.read_text(encoding="utf-8"))
    golden("mixed.report", report)
    load_plan(board)
    reasons = {
        "/fw-cfg@10100000": "no binding for qemu,fw-cfg-mmio yet",
        "/soc/pl011@9000000": "no QEMU model: pl011 (the binding of arm,pl011) is not in qemu-system-riscv64",
        "/soc/rtc@101000": "no binding for google,goldfish-rtc (qemu-system-riscv64 has a type goldfish_rtc",
        "/soc/gpio@10060000": "no binding for acme,gpio (and no QEMU type of that name)",
        "/soc/gpio@10060000/gpio-hog": "inside /soc/gpio@10060000, which is skipped",
        "/soc/pci@30000000/ethernet@1,0": "on the PCI bus of /soc/pci@30000000: PCI devices are found by enumeration",
        "/soc/serial@10002000": 'status = "disabled"',
        "/soc/periph@10008000/virtio-noreg": "no reg",
        "/leds": "no compatible: not a device",
        "/soc/local-bus/eeprom@50": "on /soc/local-bus, which has no ranges: its reg is not a CPU address",
    }
    for path, why in reasons.items():
        assert f"  skipped {path}: {why}" in report, (path, report)
    assert "  not mapped current-speed: /soc/serial@10000000" in report
    assert "riscv,isa-extensions +xacme" in report
    assert "an interrupt to /soc/gpio@10060000, which is not imported: not wired" in report
    text = board.read_text(encoding="utf-8")
    # reg through a bus's ranges (numbered names, a run as one count: entry); the bindings' props inverted;
    # a label is the id.
    assert 'virtio${i}: {count: 2, type: virtio-mmio, mmio: "${0x10009000 + i * 0x1000}"}' in text
    assert "uart0: {type: serial-mm, props: {baudbase: 0x38400, regshift: 2, chardev: serial0}" in text
    assert 'hart-config: "MS,MS"' in text
    # A PCIe host: reg the ECAM window, ranges the I/O region and a prefetchable 32-bit window (noted).
    assert ("pci: {type: gpex-pcihost, mmio: [{region: 0, offset: 0, size: 0x10000000, addr: 0x30000000}, "
            "{region: 1, offset: 0x40000000, size: 0x40000000, addr: 0x40000000}, {region: 2, addr: 0x3000000}]}") \
        in text
    assert "ranges entry 1 has flags 0x40000000 (prefetchable, ...)" in report


def test_output_is_deterministic_and_goes_to_stdout_with_dash(sandbox: Sandbox) -> None:
    outs = set()
    for seed in ("1", "2"):
        sandbox.env["PYTHONHASHSEED"] = seed
        res = sandbox.call(sandbox.argv_cli("import-dtb", str(MIXED), "-o", "-"))
        assert res.rc == 0, res.stderr
        outs.add((res.stdout, res.stderr))
    assert len(outs) == 1
    assert next(iter(outs))[0] == (GOLDEN / "mixed.yaml").read_text(encoding="utf-8")


def _error(sandbox: Sandbox, name: str, text: str | bytes) -> str:
    path = sandbox.base / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    res = sandbox.call(sandbox.argv_cli("import-dtb", name, "-o", "out.yaml"))
    assert res.rc == 2, res.stderr
    assert not (sandbox.base / "out.yaml").exists()
    return res.stderr


_CPUS = """/dts-v1/;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	cpus { #address-cells = <1>; #size-cells = <0>;
		cpu@0 { device_type = "cpu"; reg = <0>; compatible = "riscv"; riscv,isa-base = "rv64i"; };
	};
	serial@10000000 {
		compatible = "ns16550a";
		reg = <0x0 0x10000000 0x0 0x100>;
		interrupt-parent = PARENT;
		interrupts = <10>;
	};
};
"""


def test_errors_name_the_file_line_and_column(sandbox: Sandbox) -> None:
    assert _error(sandbox, "garbage.dtb", b"\xff\xfegarbage").startswith(
        "garbage.dtb: neither a DTB (no FDT magic d00dfeed) nor DTS text (not UTF-8)")
    err = _error(sandbox, "board.yaml", (REPO / "boards" / "soc.yaml").read_text(encoding="utf-8"))
    assert err.startswith("board.yaml:1:1: not a device tree: neither a DTB"), err
    err = _error(sandbox, "parse.dts", "/dts-v1/;\n/ {\n\ta = <1 2;\n};\n")
    assert re.match(r"parse\.dts:3:\d+: parse error: ", err), err
    err = _error(sandbox, "label.dts", _CPUS.replace("PARENT", "<&nosuch>"))
    assert err.startswith("label.dts:11:23: /serial@10000000: undefined node label 'nosuch'"), err
    err = _error(sandbox, "phandle.dts", _CPUS.replace("PARENT", "<0x99>"))
    assert err.startswith("phandle.dts:11:3: /serial@10000000: interrupt-parent: phandle 0x99 names no node"), err
    # /include/ and /incbin/ read regular files only: not a device, not stdin.
    err = _error(sandbox, "inc.dts", '/dts-v1/;\n/include/ "/dev/zero"\n/ { };\n')
    assert err.startswith("inc.dts:2:1: parse error: '/dev/zero' is not a regular file"), err
    err = _error(sandbox, "incbin.dts", '/dts-v1/;\n/ { a = /incbin/("-"); };\n')
    assert err.startswith("incbin.dts:2:21: parse error: cannot include '-'"), err
    err = _error(sandbox, "nocpu.dts", "/dts-v1/;\n/ { memory@0 { device_type = \"memory\"; reg = <0 0 0 1>; }; };\n")
    assert "no CPU nodes" in err, err


def test_a_blob_with_an_unknown_phandle_names_the_node(sandbox: Sandbox) -> None:
    """A DTB has no lines: the error names the file and the node's path (dtc compiles the blob)."""
    from machinedesc.devicetree.dtc import dtb_of

    err = _error(sandbox, "phandle.dtb", dtb_of(_CPUS.replace("PARENT", "<0x99>")))
    assert err.startswith("phandle.dtb: /serial@10000000: interrupt-parent: phandle 0x99 names no node"), err


def test_help_says_what_it_maps_and_the_exit_codes(sandbox: Sandbox) -> None:
    res = sandbox.call(sandbox.argv_cli("import-dtb", "--help"))
    assert res.rc == 0
    assert "coverage report" in res.stdout and "Exit 2" in res.stdout and "'-':" in res.stdout


def test_refuses_to_overwrite_its_input(sandbox: Sandbox) -> None:
    (sandbox.base / "t.dts").write_text(MIXED.read_text(encoding="utf-8"), encoding="utf-8")
    res = sandbox.call(sandbox.argv_cli("import-dtb", "t.dts", "-o", "t.dts"))
    assert res.rc == 2 and "an input of this command" in res.stderr, res.stderr


def test_runs_fold_only_what_is_equal_or_linear() -> None:
    from machinedesc.devicetree.dtimport import Comp
    from machinedesc.devicetree.dtimport_runs import find_runs, fold_wires, linear

    assert linear([5, 5, 5]) == 5
    assert linear([0x1000, 0x1200, 0x1400]) == "${0x1000 + i * 512}"
    assert linear([0, 1, 2]) == "${i}"
    assert linear(["flash0", "flash1"]) == "flash${i}"
    assert linear([1, 2, 4]) is None and linear([True, False]) is None and linear([9, 7]) == "${9 - i * 2}"
    comps = {"u0": Comp("t", "/a", {"x": 1}, {0: 0x100}), "u1": Comp("t", "/b", {"x": 1}, {0: 0x200}),
             "u2": Comp("t", "/c", {"x": 2}, {0: 0x400}),  # x differs, address not linear: no run with it
             "v0": Comp("t", "/d", {}, {0: 0}), "v1": Comp("t", "/e", {}, {0: 8}), "v2": Comp("t", "/f", {}, {0: 16}),
             "g": Comp("g", "/g")}
    runs = find_runs(["u0", "u1", "u2", "v0", "v1", "v2", "g"], comps)
    assert list(runs) == ["v0"] and runs["v0"].mmio == {0: "${i * 8}"}
    wires = [("v0", "irq", 0, "g", "in", 3), ("v1", "irq", 0, "g", "in", 4), ("v2", "irq", 0, "g", "in", 5),
             ("v0", "irq", 1, "g", "in", 9), ("v1", "irq", 1, "g", "in", 7), ("v2", "irq", 1, "g", "in", 5),
             ("v0", "irq", 2, "g", "in", 1), ("v1", "irq", 2, "g", "in", 2), ("v2", "irq", 2, "g", "in", 4),
             ("u0", "irq", 0, "g", "in", 1)]
    assert fold_wires(wires, runs) == [("v${i}.irq[0]", "g.in[${3 + i}]", 3), ("v${i}.irq[1]", "g.in[${9 - i * 2}]", 3),
                                       ("v0.irq[2]", "g.in[1]", 1), ("v1.irq[2]", "g.in[2]", 1),  # not linear
                                       ("v2.irq[2]", "g.in[4]", 1), ("u0.irq[0]", "g.in[1]", 1)]
    # One component's consecutive lines to consecutive inputs (a PCIe host's INTA-INTD): one ranged entry.
    pins = [("p", "irq", k, "g", "in", 3 + k) for k in range(4)] + [("p", "irq", 4, "g", "in", 9),
                                                                   ("p", "irq", 5, "g", "in", 8)]
    assert fold_wires(pins, {}) == [("p.irq[0..3]", "g.in[3..6]", 4), ("p.irq[4]", "g.in[9]", 1),
                                    ("p.irq[5]", "g.in[8]", 1)]


#: boards/arm64-virt.yaml with the GICv2 fragment and virt's PCIe host (test_apply_windows.VIRT_PCIE_HOST).
ROUND_TRIP = "machinedesc: 1\nextends: v2.yaml\n" + VIRT_PCIE_HOST


def test_the_generators_gicv2_and_pcie_nodes_import_back(sandbox: Sandbox) -> None:
    """Generated tree -> import-dtb: the same GIC, PCIe windows and wires."""
    from machinedesc.devicetree.generate import generate

    shutil.copytree(REPO / "boards", sandbox.base / "boards")
    text = (REPO / "boards" / "arm64-virt.yaml").read_text(encoding="utf-8")
    (sandbox.base / "boards" / "v2.yaml").write_text(
        text.replace("gic: {use: lib/arm-gicv3.yaml,", "gic: {use: lib/arm-gicv2.yaml,"), encoding="utf-8")
    (sandbox.base / "boards" / "rt.yaml").write_text(ROUND_TRIP, encoding="utf-8")
    dts = generate(load_board(sandbox.base / "boards" / "rt.yaml")).to_dts()
    # arm,gic-400 is a GICv2 too; arm,cortex-a9-gic (the binding's revision 1 variant) a GICv1.
    for compatible, revision in (("arm,cortex-a15-gic", 2), ("arm,gic-400", 2), ("arm,cortex-a9-gic", 1)):
        (sandbox.base / "rt.dts").write_text(dts.replace('"arm,cortex-a15-gic"', f'"{compatible}"'), encoding="utf-8")
        board, report = imported(sandbox, sandbox.base / "rt.dts", "rt-imported.yaml")
        out = board.read_text(encoding="utf-8")
        assert (f"gic: {{type: arm_gic, props: {{revision: {revision}, num-cpu: 2, num-irq: 64}}, "
                "mmio: [{region: 0, addr: 0x8000000}, {region: 1, addr: 0x8010000}]}") in out, out
        assert ("pcie: {type: gpex-pcihost, mmio: [{region: 0, offset: 0, size: 0x10000000, addr: 0x4010000000}, "
                "{region: 1, offset: 0x10000000, size: 0x2eff0000, addr: 0x10000000}, "
                "{region: 1, offset: 0x8000000000, size: 0x8000000000, addr: 0x8000000000}, "
                "{region: 2, addr: 0x3eff0000}]}") in out, out
        assert '{from: "pcie.sysbus-irq[0..3]", to: "gic.unnamed-gpio-in[3..6]"}' in out, out
        # CPU i's physical timer on its PPI 14 (32 SPIs, then 32 inputs per CPU, 16 SGIs first).
        assert 'from: "cpu${i}.unnamed-gpio-out[0]", to: "gic.unnamed-gpio-in[${62 + i * 32}]"' in out, out
        assert "8 that the GIC implies" in report
        load_plan(board)
