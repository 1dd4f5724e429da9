"""import-dtb on hostile trees: each is refused with the file (and line, or node path) and exit 2, or
imported to a board that validates, with what could not be mapped said in the report; never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from machinedesc.cli import main
from machinedesc.devicetree.dtimport import Imported, import_dtb
from machinedesc.errors import DeviceTreeFileError

#: One RISC-V hart and RAM: what every tree here adds its nodes to.
HEAD = """/dts-v1/;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	cpus {
		#address-cells = <1>;
		#size-cells = <0>;
		timebase-frequency = <1000000>;
		cpu0: cpu@0 {
			device_type = "cpu"; reg = <0>; compatible = "riscv"; riscv,isa = "rv64imafdc";
			cpu0_intc: interrupt-controller {
				#interrupt-cells = <1>; interrupt-controller; compatible = "riscv,cpu-intc";
			};
		};
	};
	memory@80000000 { device_type = "memory"; reg = <0x0 0x80000000 0x0 0x4000000>; };
"""
PLIC = """	plic: plic@c000000 {
		compatible = "sifive,plic-1.0.0"; interrupt-controller; #interrupt-cells = <CELLS>;
		reg = <0 0x0c000000 0 0x600000>; riscv,ndev = <10>; interrupts-extended = <&cpu0_intc 11>;
	};
"""


def tree(tmp_path: Path, body: str, name: str = "t.dts") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + body + "};\n", encoding="utf-8")
    return path


def imported_and_valid(tmp_path: Path, path: Path, capsys: pytest.CaptureFixture[str]) -> Imported:
    """The import of ``path``, whose board must validate."""
    result = import_dtb(path, "t")
    board = tmp_path / "t.yaml"
    board.write_text(result.yaml, encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(board)])
    assert exc.value.code == 0, capsys.readouterr().err
    return result


def test_an_interrupt_specifier_of_zero_cells_is_noted_not_a_traceback(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A controller with #interrupt-cells = <0> (legal: an ACLINT SWI has it) named as a device's interrupt:
    the specifier names no input (an IndexError once)."""
    path = tree(tmp_path, PLIC.replace("CELLS", "0") + """
	uart@10000000 {
		compatible = "ns16550a"; reg = <0 0x10000000 0 0x100>; interrupts-extended = <&plic>, <&plic>;
	};
""")
    report = imported_and_valid(tmp_path, path, capsys).report
    assert "  note /uart@10000000: interrupt specifier [] of /plic@c000000 is too short to name an input " \
        "(its #interrupt-cells): not wired" in report


def _nested(depth: int) -> str:
    return "".join(f"n{k} {{ " for k in range(depth)) + "}; " * depth + "\n"


def test_nodes_nested_too_deep_are_refused_at_their_line(tmp_path: Path) -> None:
    """dtlib's parser recurses per level: 5,000 levels were a RecursionError traceback. 64 (libfdt's
    FDT_MAX_DEPTH, the root included) is read; one more is an error at its brace, or naming a DTB."""
    from machinedesc.devicetree.dtc import dtb_of
    from machinedesc.devicetree.dtread import MAX_DEPTH, read

    read(tree(tmp_path, _nested(MAX_DEPTH - 1)))
    with pytest.raises(DeviceTreeFileError) as err:
        read(tree(tmp_path, _nested(5000)))
    at = -1
    for _ in range(MAX_DEPTH):  # the root's brace is the first level: the 64th nested one is one too many
        at = _nested(5000).index("{", at + 1)
    column = at + 1
    assert str(err.value.location) == f"{tmp_path / 't.dts'}:17:{column}"
    assert err.value.message == f"nodes nested more than {MAX_DEPTH} deep: not read"
    blob = tmp_path / "t.dtb"
    blob.write_bytes(dtb_of(HEAD + _nested(MAX_DEPTH) + "};\n"))
    with pytest.raises(DeviceTreeFileError) as err:
        read(blob)
    assert (err.value.location.file, err.value.location.line) == (str(blob), 0)  # a DTB has no lines


def test_a_property_of_many_values_is_read_in_linear_time(tmp_path: Path) -> None:
    """dtlib appended each cell to immutable bytes: 320,000 cells took 16 s, 800,000 over a minute.
    600,000 values (cells, strings, references) now take a few seconds."""
    import time

    from machinedesc.devicetree.dtread import read

    cells, strings, refs = " ".join(["0x1"] * 400_000), ", ".join(['"s"'] * 100_000), " ".join(["&l"] * 100_000)
    path = tree(tmp_path, f"\tx {{ a = <{cells}>; b = {strings}; c = <{refs}>; }};\n\tl: l {{ }};\n")
    start = time.monotonic()
    t = read(path)
    assert time.monotonic() - start < 30
    props = t.root.nodes["x"].props
    assert (len(props["a"].value), len(props["b"].value), len(props["c"].value)) == (1_600_000, 200_000, 400_000)


def test_reg_beyond_64_bits_skips_the_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An address of three cells, a reg that wraps, a bus whose ranges move a child past 2**64: each node is
    skipped with its reason (the board once held the address and failed to validate)."""
    path = tree(tmp_path, """
	memory@0 { device_type = "memory"; reg = <0xffffffff 0xffffffff 0x0 0x2>; };
	uart@10000000 { compatible = "ns16550a"; reg = <0xffffffff 0xffffff00 0x0 0x101>; };
	soc3 {
		#address-cells = <3>; #size-cells = <2>; compatible = "simple-bus"; ranges;
		uart@0 { compatible = "ns16550a"; reg = <0x1 0x0 0x10000000 0x0 0x100>; };
	};
	soc {
		#address-cells = <2>; #size-cells = <2>; compatible = "simple-bus";
		ranges = <0 0 0xffffffff 0xffffffff 0xffffffff 0xffffffff>;
		uart@10 { compatible = "ns16550a"; reg = <0 0x10 0 0x100>; };
	};
""")
    report = imported_and_valid(tmp_path, path, capsys).report
    why = "ends beyond the 64-bit address space (as the CPU sees it, through the buses' ranges)"
    assert f"  skipped /memory@0: reg entry 0 [0xffffffffffffffff, +0x2) {why}" in report
    assert f"  skipped /uart@10000000: reg entry 0 [0xffffffffffffff00, +0x101) {why}" in report
    assert f"  skipped /soc3/uart@0: reg entry 0 [0x10000000010000000, +0x100) {why}" in report
    assert f"  skipped /soc/uart@10: reg entry 0 [0x1000000000000000f, +0x100) {why}" in report


def test_reg_entries_beyond_the_types_regions_and_interrupts_beyond_its_lines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A UART with 1,000 reg entries maps its one region; its second interrupt (it has one line), and an
    interrupt to source 0xffffffff of a PLIC of 10 sources, are not wired: said in the report (the board once
    named 1,000 regions, the second line and the source, and failed to validate)."""
    regs = " ".join(f"0x0 {0x10000000 + 0x100 * k:#x} 0x0 0x100" for k in range(1000))
    path = tree(tmp_path, PLIC.replace("CELLS", "1") + f"""
	uart@10000000 {{ compatible = "ns16550a"; reg = <{regs}>; interrupts-extended = <&plic 3>, <&plic 4>; }};
	uart@20000000 {{ compatible = "ns16550a";
		reg = <0 0x20000000 0 0x100>; interrupts-extended = <&plic 0xffffffff>; }};
""")
    result = imported_and_valid(tmp_path, path, capsys)
    assert "  not mapped reg entries 1..999 (serial-mm has 1 MMIO region(s)): /uart@10000000" in result.report
    assert "  note /uart@10000000: output 1 of uart0, which has 1 sysbus-irq lines: not wired" in result.report
    assert "  note /uart@20000000: input 4294967295 of plic, which has 11 unnamed-gpio-in lines: not wired" \
        in result.report
    assert 'to: "plic.unnamed-gpio-in[3]"' in result.yaml


@pytest.mark.parametrize(("body", "where", "message"), [
    ("\ta { x = &{/nonexistent}; };\n", "17:2", "/a: component 'nonexistent' in path '/nonexistent' does not exist"),
    ("\ta { phandle = <5>; };\n\tb { phandle = <5>; };\n", "18:2", "/b: duplicated phandle 0x5 (seen before at /a)"),
    ("\tx: a { };\n\tx: b { };\n", "18:5", "Label 'x' appears on /a and on /b"),
    ('\taliases { x = "/nonexistent"; };\n', "17:12",
     "property 'x' on /aliases in {path} points to the non-existent node \"/nonexistent\""),
])
def test_tree_errors_about_a_node_name_its_line(tmp_path: Path, body: str, where: str, message: str) -> None:
    """dtlib's errors after parsing name a node (or its property), not a line: the node is found in the text."""
    path = tree(tmp_path, body)
    with pytest.raises(DeviceTreeFileError) as err:
        import_dtb(path, "t")
    assert (str(err.value.location), err.value.message) == (f"{path}:{where}", message.format(path=path))


def test_a_blob_error_names_the_blob_not_a_temporary_file(tmp_path: Path) -> None:
    from machinedesc.devicetree.dtc import dtb_of

    blob = tmp_path / "t.dtb"
    blob.write_bytes(dtb_of(HEAD + '\taliases { x = "/nonexistent"; };\n};\n'))
    with pytest.raises(DeviceTreeFileError) as err:
        import_dtb(blob, "t")
    assert err.value.message == f"property 'x' on /aliases in {blob} points to the non-existent node \"/nonexistent\""


def test_a_memory_node_of_zero_bytes_is_no_ram(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QEMU's sysbus-memory refuses size 0 (the board validated, then apply failed at the step: exit 4) and
    aborts within 4 KiB of 2**64."""
    path = tree(tmp_path, '\tmemory@0 { device_type = "memory"; reg = <0x0 0x0 0x0 0x0>; };\n'
                          '\tmemory@1 { device_type = "memory"; reg = <0x0 0x1 0xffffffff 0xffffffff>; };\n')
    report = imported_and_valid(tmp_path, path, capsys).report
    assert "  skipped /memory@0: a memory node without reg (or none of a size QEMU makes)" in report
    assert "  note /memory@0: reg entry 0 at 0x0 is 0x0 bytes: no RAM (RAM of 1 byte to 2**63 bytes)" in report
    assert "  note /memory@1: reg entry 0 at 0x1 is 0xffffffffffffffff bytes: no RAM (RAM of 1 byte to 2**63 bytes)" \
        in report


GIC_TREE = """/dts-v1/;
/ {
	#address-cells = <2>; #size-cells = <2>;
	interrupt-parent = <&gic>;
	cpus { #address-cells = <1>; #size-cells = <0>;
		cpu@0 { device_type = "cpu"; compatible = "arm,cortex-a57"; reg = <0>; enable-method = "psci"; };
	};
	psci { compatible = "arm,psci-1.0"; method = "hvc"; };
	memory@40000000 { device_type = "memory"; reg = <0 0x40000000 0 0x8000000>; };
	gic: intc@8000000 { compatible = "arm,gic-v3"; #interrupt-cells = <3>; interrupt-controller;
		reg = <0 0x8000000 0 0x10000>, <0 0x80a0000 0 0xf60000>; };
	pl011@9000000 { compatible = "arm,pl011", "arm,primecell"; reg = <0 0x9000000 0 0x1000>;
		interrupts = <0 SPI 4>; };
	timer { compatible = "arm,armv8-timer"; interrupts = <1 13 4>, <1 14 4>, <1 PPI 4>, <1 10 4>; };
};
"""


@pytest.mark.parametrize(("spi", "num_irq"), [(959, 992), (960, 64), (0xfffffff0, 64)])
def test_gic_spis_and_ppis_beyond_the_gicv3_are_not_wired(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          spi: int, num_irq: int) -> None:
    """num-irq comes from the SPIs a GICv3 can have (at most 960: num-irq 992); a PPI is 0..15. SPI 0xfffffff0
    once made num-irq 0x100000020, PPI 20 the wire to another CPU's SGI 4."""
    path = tmp_path / "t.dts"
    path.write_text(GIC_TREE.replace("SPI", str(spi)).replace("PPI", "20"), encoding="utf-8")
    result = imported_and_valid(tmp_path, path, capsys)
    assert f"num-irq: {num_irq}" in result.yaml or f"num-irq: {num_irq:#x}" in result.yaml
    assert "  note /timer: interrupt 2 [1, 20, 4]: no CPU output for it: not wired" in result.report
    if spi >= 960:
        assert f"  note /pl011@9000000: input {spi} of gic, which has 64 unnamed-gpio-in lines: not wired" \
            in result.report


def _blob(tmp_path: Path, edit: dict[int, int] | None = None, cut: int | None = None) -> Path:
    """A good DTB with header words replaced (byte offset -> value) or cut to ``cut`` bytes."""
    from machinedesc.devicetree.dtc import dtb_of

    data = bytearray(dtb_of(HEAD + "};\n"))
    for at, value in (edit or {}).items():
        data[at:at + 4] = value.to_bytes(4, "big")
    path = tmp_path / "t.dtb"
    path.write_bytes(bytes(data[:cut]))
    return path


@pytest.mark.parametrize(("edit", "cut", "message"), [
    (None, 20, "a DTB header is 40 bytes; the file has 20: truncated"),
    (None, 100, "the DTB header says {size} bytes; the file has 100: truncated, or not a DTB"),
    ({4: 0xfffffff0}, None, "the DTB header says 4294967280 bytes; the file has {size}: truncated, or not a DTB"),
    ({20: 1}, None, "DTB version 1, compatible with version 16: dtc reads versions up to 17 (and a version is "
                    "never below its compatible one)"),
    ({24: 18}, None, "DTB version 17, compatible with version 18: dtc reads versions up to 17 (and a version is "
                     "never below its compatible one)"),
])
def test_a_blob_with_a_bad_header_says_what_is_wrong(tmp_path: Path, edit: dict[int, int] | None, cut: int | None,
                                                     message: str) -> None:
    """dtc said "EOF before reading", "Bad address" (a header size of 4 GiB) or named some node instead."""
    size = len(_blob(tmp_path).read_bytes())
    path = _blob(tmp_path, edit, cut)
    with pytest.raises(DeviceTreeFileError) as err:
        import_dtb(path, "t")
    assert (err.value.location.line, err.value.message) == (0, message.format(size=size))


def _riscv_cpus(cpus: str, extra: str = "") -> str:
    return f"""/dts-v1/;
/ {{ #address-cells = <2>; #size-cells = <2>;
	cpus {{ #address-cells = <1>; #size-cells = <0>; timebase-frequency = <1000000>;
{cpus}
{extra}
	}};
	memory@80000000 {{ device_type = "memory"; reg = <0x0 0x80000000 0x0 0x4000000>; }};
}};
"""


def _cpu(label: str, name: str, reg: int) -> str:
    return (f'\t\t{label}: {name} {{ device_type = "cpu"; reg = <{reg}>; compatible = "riscv"; '
            'riscv,isa = "rv64imafdc"; };\n')


def test_two_cpus_of_one_hart_id_keep_the_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The second CPU node of hart ID 0 once replaced the first and made two `hart0:` keys."""
    path = tmp_path / "t.dts"
    path.write_text(_riscv_cpus(_cpu("c0", "cpu@0", 0) + _cpu("c1", "cpu@00", 0)), encoding="utf-8")
    result = imported_and_valid(tmp_path, path, capsys)
    assert "  skipped /cpus/cpu@00: reg 0x0 again (the hart ID or MPIDR of /cpus/cpu@0): one CPU each" \
        in result.report
    assert result.yaml.count("hart0:") == 1


def test_a_cpu_in_two_cpu_map_clusters_stays_in_the_first(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The later cluster took the CPU and left the first empty: a board QEMU refuses (an empty cluster)."""
    path = tmp_path / "t.dts"
    path.write_text(_riscv_cpus(_cpu("c0", "cpu@0", 0) + _cpu("c1", "cpu@1", 1), """
		cpu-map {
			cluster0 { core0 { cpu = <&c0>; }; core1 { cpu = <&c0>; }; };
			cluster1 { core0 { cpu = <&c1>; }; core1 { cpu = <&c0>; }; };
		};"""), encoding="utf-8")
    result = imported_and_valid(tmp_path, path, capsys)
    assert "  note /cpus/cpu-map/cluster0, /cpus/cpu-map/cluster1: CPUs hart0 are named by more than one " \
        "cpu-map core: each stays in the first cluster that names it" in result.report
    assert "hart0: {type: rv64-riscv-cpu, parent: cluster0" in result.yaml
    assert "hart1: {type: rv64-riscv-cpu, parent: cluster1" in result.yaml


def test_a_plic_of_more_sources_than_a_plic_has_is_skipped(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """riscv,ndev 0xfffffffe became num-sources 0xffffffff, a board that validated and aborted QEMU."""
    path = tree(tmp_path, PLIC.replace("CELLS", "1").replace("riscv,ndev = <10>", "riscv,ndev = <0xfffffffe>"))
    report = imported_and_valid(tmp_path, path, capsys).report
    assert "  skipped /plic@c000000: num-sources 4294967295 (from the tree) is beyond QEMU's riscv.sifive.plic: " \
        "a PLIC has at most 1023 sources and source 0" in report


def test_an_include_of_itself_and_an_include_bomb_stop_at_once(tmp_path: Path) -> None:
    """A file that /include/s itself was read forever (dtlib compares the name as written with the
    including file's path); two includes a level, 30 levels deep, would be 2**30 files."""
    import time

    import subprocess
    import sys

    (tmp_path / "self.dts").write_text('/dts-v1/;\n/include/ "self.dts"\n/ { };\n', encoding="utf-8")
    # In a subprocess with a timeout: a regression hangs no test run.
    import os

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}  # this checkout's machinedesc
    path = tmp_path / "self.dts"  # by its absolute path: dtlib's own check catches "self.dts" given as such
    res = subprocess.run([sys.executable, "-m", "machinedesc", "import-dtb", "-o", "t.yaml", str(path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert (res.returncode, res.stderr) == (2, f"{path}:2:1: parse error: 'self.dts' includes itself (through the "
                                               "files including it): not included\n")
    assert not (tmp_path / "t.yaml").exists()
    for k in range(30):
        (tmp_path / f"l{k}.dtsi").write_text(f'/include/ "l{k + 1}.dtsi"\n' * 2, encoding="utf-8")
    (tmp_path / "l30.dtsi").write_text("/ { };\n", encoding="utf-8")
    (tmp_path / "fan.dts").write_text('/dts-v1/;\n/include/ "l0.dtsi"\n', encoding="utf-8")
    start = time.monotonic()
    with pytest.raises(DeviceTreeFileError) as err:
        import_dtb(tmp_path / "fan.dts", "t")
    assert time.monotonic() - start < 10
    assert "the tree's /include/s and /incbin/s are over 256 files or 16777216 bytes together" in err.value.message


def test_incbins_count_toward_one_byte_budget(tmp_path: Path) -> None:
    (tmp_path / "mb.bin").write_bytes(bytes(1 << 20))
    path = tmp_path / "t.dts"
    path.write_text("/dts-v1/;\n/ { " + " ".join(f'p{k} = /incbin/("mb.bin");' for k in range(20)) + " };\n",
                    encoding="utf-8")
    with pytest.raises(DeviceTreeFileError) as err:
        import_dtb(path, "t")
    assert err.value.message == ("parse error: 'mb.bin': the tree's /include/s and /incbin/s are over 256 files or "
                                 "16777216 bytes together: not included")


def test_the_reports_escape_the_files_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A compatible (or a QMP file's loader name) with ESC sequences and a right-to-left override reached the
    terminal as they were (click strips ESC only when stderr is not a terminal)."""
    path = tree(tmp_path, '\tx@1 { compatible = "evil\\x1b[31mRED\\xe2\\x80\\xae"; reg = <0 1 0 1>; };\n')
    with pytest.raises(SystemExit) as exc:
        main(["import-dtb", "-o", str(tmp_path / "t.yaml"), str(path)])
    assert exc.value.code in (0, None)
    assert "  skipped /x@1: no binding for evil\\x1b[31mRED\\u202e (and no QEMU type of that name)" \
        in capsys.readouterr().err.splitlines()
    qmp = tmp_path / "t.qmp"
    qmp.write_text('# system: riscv64\nx-machine-init\ndevice_add driver=loader file="a\\u202eb.elf"\n',
                   encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["import-qmp", "-o", str(tmp_path / "q.yaml"), str(qmp)])
    assert exc.value.code in (0, None)
    err = capsys.readouterr().err
    assert "\u202e" not in err and "a\\u202eb.elf" in err, err


def test_an_address_of_thousands_of_cells_is_refused_at_once(tmp_path: Path) -> None:
    """#address-cells = <200000>: joining the cells cost their square (24 s); more than 4 is an error at the
    bus's property."""
    import time

    cells = " ".join(["0x1"] * 200_001)
    path = tree(tmp_path, f'\tsoc {{ #address-cells = <200000>; #size-cells = <1>; compatible = "simple-bus"; '
                          f'ranges;\n\t\tuart@0 {{ compatible = "ns16550a"; reg = <{cells}>; }};\n\t}};\n')
    start = time.monotonic()
    with pytest.raises(DeviceTreeFileError) as err:
        import_dtb(path, "t")
    assert time.monotonic() - start < 10
    assert (str(err.value.location), err.value.message) == (
        f"{path}:17:8", "/soc: #address-cells: 200000 cells: an address or size is at most 4 cells (PCI's 3 are "
                         "the most a tree uses)")


def test_a_node_skipped_for_its_compatible_may_have_a_reg_nothing_reads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The check of reg beyond 64 bits reads every reg: a malformed one of a node without a binding stays a
    skipped node, as before, not an error for the whole tree."""
    path = tree(tmp_path, '\tx@1 { compatible = "acme,unknown"; reg = <1 2 3>; };\n')
    report = imported_and_valid(tmp_path, path, capsys).report
    assert "  skipped /x@1: no binding for acme,unknown (and no QEMU type of that name)" in report
