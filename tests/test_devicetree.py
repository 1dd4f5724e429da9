"""The guest's device tree: dtc compiles our source without a warning into a blob that holds the tree's
nodes, the same board gives the same bytes, the nodes follow the board (harts, wiring, overrides), they match
QEMU's own -M virt, and without dtc the plan says its hash was not computed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import fdt
import pytest
from needs import missing

from machinedesc.devicetree import dtc
from machinedesc.devicetree.generate import generate
from machinedesc.devicetree.tree import DeviceTree
from machinedesc.errors import BoardError, InstallError
from machinedesc.plan.pipeline import load_board

ROOT = Path(__file__).resolve().parent.parent
BOARDS = sorted((ROOT / "boards").glob("*.yaml"))
VARIANTS = [("riscv-virt.yaml", {"harts": "1"}), ("riscv-virt.yaml", {"harts": "4"}),
            ("riscv-virt.yaml", {"harts": "8"}), ("arm64-virt.yaml", {"cpus": "1"}),
            ("arm64-virt.yaml", {"cpus": "4", "psci_conduit": "1"}), ("soc-4core.yaml", {})]


def tree_of(board: str | Path, **sets: str) -> DeviceTree:
    return generate(load_board(ROOT / "boards" / board if isinstance(board, str) else board, sets))


def run_dtc(*args: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("dtc") is None:
        missing("dtc is not installed (apt-get install device-tree-compiler; scripts/install.sh does)")
    return subprocess.run(["dtc", *args, "-"], input=data, capture_output=True, timeout=60, check=False)


def check_with_dtc(tree: DeviceTree) -> None:
    """dtc compiles the DTS without a word (every check it runs by default), and the blob to_dtb() gives
    holds exactly the tree's nodes and properties, as the tests' own reader (tests/fdt.py) sees them."""
    compiled = run_dtc("-I", "dts", "-O", "dtb", data=tree.to_dts().encode())
    assert compiled.returncode == 0 and compiled.stderr == b"", compiled.stderr.decode()
    nodes = fdt.parse(tree.to_dtb())
    phandles = tree.phandles()
    assert list(nodes) == [path for path, _ in tree.root.walk()]
    for path, node in tree.root.walk():
        names = list(node.props) + (["phandle"] if node.label in phandles else [])
        assert list(nodes[path]) == names, path
    # dtc reads its own blob back without a word.
    back = run_dtc("-I", "dtb", "-O", "dtb", data=tree.to_dtb())
    assert back.returncode == 0 and back.stderr == b"", back.stderr.decode()


@pytest.mark.parametrize("board", BOARDS, ids=lambda p: p.stem)
def test_catalog_device_trees_compile_without_warnings(board: Path) -> None:
    check_with_dtc(tree_of(board))


@pytest.mark.parametrize(("board", "sets"), VARIANTS, ids=lambda v: str(v))
def test_variants_compile_without_warnings(board: str, sets: dict[str, str]) -> None:
    check_with_dtc(tree_of(board, **sets))


def test_same_board_gives_the_same_bytes_in_every_process(tmp_path: Path) -> None:
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"{seed}.dtb"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", "from machinedesc.cli import main; main()", "dtb",
                               "boards/riscv-virt.yaml", "--set", "harts=3", "-o", str(out)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == tree_of("riscv-virt.yaml", harts="3").to_dtb()
    stdout = subprocess.run([sys.executable, "-c", "from machinedesc.cli import main; main()", "dtb",
                             "boards/riscv-virt.yaml", "--set", "harts=3"], cwd=ROOT, capture_output=True,
                            timeout=120, check=False)
    assert stdout.stdout == outs[0]


# ---- the nodes follow the board ------------------------------------------------


def phandle_of(nodes: dict[str, dict[str, bytes]], path: str) -> int:
    return fdt.cells(nodes[path]["phandle"])[0]


@pytest.mark.parametrize("harts", [1, 2, 4])
def test_riscv_virt_follows_the_hart_count(harts: int) -> None:
    nodes = fdt.parse(tree_of("riscv-virt.yaml", harts=str(harts)).to_dtb())
    cpus = sorted((p for p in nodes if p.startswith("/cpus/cpu@") and p.count("/") == 2), key=len)
    assert cpus == [f"/cpus/cpu@{h:x}" for h in range(harts)]
    intc = [phandle_of(nodes, f"{cpu}/interrupt-controller") for cpu in cpus]
    assert fdt.cells(nodes["/cpus"]["timebase-frequency"]) == [10_000_000]
    plic = nodes["/soc/plic@c000000"]
    # One M (11) and one S (9) context per hart, in hart-config order ("MS,MS,...").
    assert fdt.cells(plic["interrupts-extended"]) == [c for p in intc for c in (p, 11, p, 9)]
    assert fdt.cells(plic["riscv,ndev"]) == [95]
    assert fdt.cells(plic["reg"]) == [0, 0xC000000, 0, 0x200000 + harts * 0x2000]
    assert fdt.cells(nodes["/soc/mswi@2000000"]["interrupts-extended"]) == [c for p in intc for c in (p, 3)]
    mtimer = nodes["/soc/mtimer@200bff8"]
    assert fdt.cells(mtimer["interrupts-extended"]) == [c for p in intc for c in (p, 7)]
    assert fdt.cells(mtimer["reg"]) == [0, 0x200BFF8, 0, 8, 0, 0x2004000, 0, 8 * harts]
    uart = nodes["/soc/serial@10000000"]
    assert fdt.cells(uart["interrupt-parent"]) == [fdt.cells(plic["phandle"])[0]]
    assert fdt.cells(uart["interrupts"]) == [10]
    assert fdt.strings(nodes["/chosen"]["stdout-path"]) == ["/soc/serial@10000000"]
    assert fdt.cells(nodes["/memory@80000000"]["reg"]) == [0, 0x80000000, 0, 128 << 20]
    assert fdt.cells(nodes["/poweroff"]["value"]) == [0x5555]


def test_arm64_virt_interrupts_come_from_the_wiring() -> None:
    nodes = fdt.parse(tree_of("arm64-virt.yaml", psci_conduit="1").to_dtb())
    gic = nodes["/intc@8000000"]
    ph = fdt.cells(gic["phandle"])
    assert fdt.cells(gic["reg"]) == [0, 0x8000000, 0, 0x10000, 0, 0x80A0000, 0, 2 * 0x20000]
    assert fdt.cells(gic["interrupts"]) == [1, 9, 4]          # the maintenance interrupt, PPI 9
    assert fdt.cells(nodes["/timer"]["interrupts"]) == [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]
    assert fdt.cells(nodes["/timer"]["interrupt-parent"]) == ph
    assert fdt.cells(nodes["/pmu"]["interrupts"]) == [1, 7, 4]
    assert fdt.cells(nodes["/pl011@9000000"]["interrupts"]) == [0, 1, 4]   # SPI 1, level high
    assert fdt.strings(nodes["/psci"]["method"]) == ["smc"]
    assert [fdt.strings(nodes[f"/cpus/cpu@{c}"]["enable-method"]) for c in (0, 1)] == [["psci"], ["psci"]]
    assert fdt.strings(nodes["/chosen"]["stdout-path"]) == ["/pl011@9000000"]
    assert fdt.strings(nodes["/"]["model"]) == ["machinedesc arm64-virt"]


def test_types_without_a_binding_are_left_out_and_listed(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = tree_of("mutual-links.yaml")
    assert tree.notes == ["eth0: no binding for type imx.enet: left out of the device tree",
                          "eth1: no binding for type imx.enet: left out of the device tree"]
    assert "eth" not in tree.to_dts() and "02188000" not in tree.to_dts()
    from machinedesc.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["dtb", "boards/mutual-links.yaml", "--format", "dts", "-v"])
    out, err = capsys.readouterr()
    assert exc.value.code == 0 and out.startswith("/dts-v1/;\n")
    assert "machinedesc: dtb: eth0: no binding for type imx.enet" in err


# ---- overrides ---------------------------------------------------------------------


def variant(tmp_path: Path, text: str) -> Path:
    shutil.copy(ROOT / "boards" / "riscv-virt.yaml", tmp_path / "riscv-virt.yaml")
    shutil.copytree(ROOT / "boards" / "lib", tmp_path / "lib")  # the fragments riscv-virt.yaml uses
    path = tmp_path / "variant.yaml"
    path.write_text("machinedesc: 1\nextends: riscv-virt.yaml\n" + text)
    return path


def test_overrides_change_add_and_omit_nodes(tmp_path: Path) -> None:
    tree = tree_of(variant(tmp_path, """
devicetree:
  compatible: ["acme,board", riscv-virtio]
  components:
    test: {omit: true}
    uart0:
      name: uart
      props: {current-speed: 115200, clock-frequency: false, reg-io-width: 1}
  nodes:
    /soc/thing@20000000:
      props: {compatible: "acme,thing", reg: [0, 0x20000000, 0, 0x1000], interrupts-extended: ["&plic", 5]}
    /chosen:
      props: {bootargs: console=ttyS0}
"""))
    check_with_dtc(tree)
    nodes = fdt.parse(tree.to_dtb())
    assert fdt.strings(nodes["/"]["compatible"]) == ["acme,board", "riscv-virtio"]
    assert not any("test@" in p for p in nodes) and "/poweroff" not in nodes
    uart = nodes["/soc/uart@10000000"]
    assert "clock-frequency" not in uart and fdt.cells(uart["current-speed"]) == [115200]
    plic = fdt.cells(nodes["/soc/plic@c000000"]["phandle"])[0]
    assert fdt.cells(nodes["/soc/thing@20000000"]["interrupts-extended"]) == [plic, 5]
    assert fdt.strings(nodes["/chosen"]["bootargs"]) == ["console=ttyS0"]
    assert "test: left out by devicetree: components: (omit: true)" in tree.notes


def test_an_omitted_hart_keeps_the_plic_contexts_of_the_others(tmp_path: Path) -> None:
    # sifive_plic.c numbers contexts hart by hart from hart-config: hart 2's M context is context 4
    # whether or not hart 1 is in the tree, so hart 1's two contexts stay, marked not present (-1).
    tree = tree_of(variant(tmp_path, "params: {harts: 3}\ndevicetree:\n  components:\n    hart1: {omit: true}\n"))
    check_with_dtc(tree)
    nodes = fdt.parse(tree.to_dtb())
    intc = {n: fdt.cells(nodes[f"/cpus/cpu@{n}/interrupt-controller"]["phandle"])[0] for n in (0, 2)}
    assert fdt.cells(nodes["/soc/plic@c000000"]["interrupts-extended"]) == [
        intc[0], 11, intc[0], 9, intc[0], 0xFFFFFFFF, intc[0], 0xFFFFFFFF, intc[2], 11, intc[2], 9]
    assert "plic: hart-config names hart 1, which has no CPU node: its contexts are marked not present (-1)" \
        in tree.notes


def test_override_errors_name_their_line(tmp_path: Path) -> None:
    board = variant(tmp_path, """
devicetree:
  components:
    uartt: {props: {a: 1}}
    mtimer: {props: {b: [0x100000000]}}
""")
    with pytest.raises(BoardError) as err:
        tree_of(board)
    text = str(err.value)
    assert "variant.yaml:6:5: devicetree.components.uartt: 'uartt' is not a component" in text
    assert "did you mean 'uart0'?" in text
    assert "variant.yaml:7:25: devicetree.components.mtimer.props.b: 4294967296 is not a 32-bit cell" in text


def test_a_reference_to_no_node_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="&nosuch: 'nosuch' is not a component"):
        tree_of(variant(tmp_path, "devicetree:\n  nodes:\n    /x:\n      props: {p: ['&nosuch']}\n"))


def test_missing_dtc_is_an_install_error(monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tree_of("riscv-virt.yaml")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(InstallError, match="apt-get install device-tree-compiler") as err:
        dtc.compile_dts("/dts-v1/; / { };")
    assert err.value.exit_code == 1
    with pytest.raises(InstallError, match="dtc .the device-tree compiler. is not installed"):
        tree.to_dtb()
    assert dtc.dtb_sha256(tree.to_dts()) == "not computed: dtc (device-tree-compiler) is not installed"


def test_a_tree_dtc_refuses_is_a_dtc_error() -> None:
    if shutil.which("dtc") is None:
        missing("dtc is not installed (apt-get install device-tree-compiler; scripts/install.sh does)")
    with pytest.raises(dtc.DtcError, match="dtc refused the device tree") as err:
        dtc.dtb_of("/dts-v1/; / { p = <&nowhere>; };")
    assert err.value.exit_code == 2 and "nowhere" in err.value.messages
    assert dtc.dtb_sha256("/dts-v1/; / { p = <&nowhere>; };").startswith("not computed: dtc refused the tree (")


def test_cpu_type_from_a_parameter(tmp_path: Path) -> None:
    shutil.copy(ROOT / "boards" / "arm64-virt.yaml", tmp_path / "arm64-virt.yaml")
    shutil.copytree(ROOT / "boards" / "lib", tmp_path / "lib")  # the fragments arm64-virt.yaml uses
    board = load_board(tmp_path / "arm64-virt.yaml", {"cpu": "cortex-a72-arm-cpu"})
    assert {c.type for c in board.components if c.info.is_cpu} == {"cortex-a72-arm-cpu"}
    nodes = fdt.parse(generate(board).to_dtb())
    assert fdt.strings(nodes["/cpus/cpu@0"]["compatible"]) == ["arm,cortex-a72"]


# ---- QEMU's own -M virt -------------------------------------------------------------


def qemu_dtb(tmp_path: Path, system: str, machine: str, *args: str) -> dict[str, dict[str, bytes]]:
    binary = shutil.which(f"qemu-system-{system}")
    if binary is None:
        missing(f"Debian's qemu-system-{system} is not installed (scripts/install.sh installs it)")
    out = tmp_path / "qemu.dtb"
    done = subprocess.run([binary, "-M", f"{machine},dumpdtb={out}", "-m", "128M", "-nographic", "-net", "none",
                           *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return fdt.parse(out.read_bytes())


def same(ours: dict[str, bytes], theirs: dict[str, bytes], *names: str) -> None:
    for name in names:
        assert ours[name] == theirs[name], name


def test_riscv_virt_matches_qemu_virt(tmp_path: Path) -> None:
    theirs = qemu_dtb(tmp_path, "riscv64", "virt,aclint=on", "-smp", "2")
    ours = fdt.parse(tree_of("riscv-virt.yaml").to_dtb())
    for cpu in ("/cpus/cpu@0", "/cpus/cpu@1"):
        same(ours[cpu], theirs[cpu], "device_type", "reg", "status", "compatible", "riscv,isa", "riscv,isa-base",
             "riscv,isa-extensions", "mmu-type", "riscv,cbom-block-size", "riscv,cboz-block-size")
        same(ours[f"{cpu}/interrupt-controller"], theirs[f"{cpu}/interrupt-controller"], "compatible",
             "#interrupt-cells", "interrupt-controller")
    same(ours["/cpus"], theirs["/cpus"], "timebase-frequency", "#address-cells", "#size-cells")
    same(ours["/memory@80000000"], theirs["/memory@80000000"], "reg", "device_type")
    same(ours["/soc/plic@c000000"], theirs["/soc/plic@c000000"], "compatible", "riscv,ndev", "#interrupt-cells",
         "#address-cells", "interrupt-controller")
    for path in ("/soc/mswi@2000000", "/soc/serial@10000000", "/soc/test@100000"):
        same(ours[path], theirs[path], "compatible")
    same(ours["/soc/serial@10000000"], theirs["/soc/serial@10000000"], "interrupts")
    same(ours["/soc/mswi@2000000"], theirs["/soc/mswi@2000000"], "#interrupt-cells", "interrupt-controller")
    same(ours["/soc/mtimer@200bff8"], theirs["/soc/mtimer@2004000"], "compatible")
    for name in ("/poweroff", "/reboot"):
        same(ours[name], theirs[name], "compatible", "value", "offset")

    def contexts(nodes: dict[str, dict[str, bytes]], path: str) -> list[tuple[int, int]]:
        """interrupts-extended as (hart, cell) pairs: phandles replaced by the hart they belong to."""
        harts = {phandle_of(nodes, f"/cpus/cpu@{h}/interrupt-controller"): h for h in (0, 1)}
        cells = fdt.cells(nodes[path]["interrupts-extended"])
        return [(harts[cells[k]], cells[k + 1]) for k in range(0, len(cells), 2)]

    assert contexts(ours, "/soc/plic@c000000") == contexts(theirs, "/soc/plic@c000000")
    assert contexts(ours, "/soc/mswi@2000000") == contexts(theirs, "/soc/mswi@2000000")
    assert contexts(ours, "/soc/mtimer@200bff8") == contexts(theirs, "/soc/mtimer@2004000")
    # mtime at 0x200bff8, mtimecmp at 0x2004000: the addresses agree, -M virt's sizes span its larger aperture.
    assert fdt.cells(ours["/soc/mtimer@200bff8"]["reg"])[1::4] == fdt.cells(theirs["/soc/mtimer@2004000"]["reg"])[1::4]


def test_arm64_virt_matches_qemu_virt(tmp_path: Path) -> None:
    theirs = qemu_dtb(tmp_path, "aarch64", "virt,gic-version=3", "-cpu", "cortex-a57", "-smp", "2")
    ours = fdt.parse(tree_of("arm64-virt.yaml").to_dtb())
    for cpu in ("/cpus/cpu@0", "/cpus/cpu@1"):
        same(ours[cpu], theirs[cpu], "device_type", "reg", "compatible", "enable-method")
    same(ours["/psci"], theirs["/psci"], "compatible", "method", "cpu_on", "cpu_off", "cpu_suspend", "migrate")
    same(ours["/timer"], theirs["/timer"], "compatible", "interrupts", "always-on")
    same(ours["/pmu"], theirs["/pmu"], "compatible", "interrupts")
    same(ours["/intc@8000000"], theirs["/intc@8000000"], "compatible", "#interrupt-cells", "interrupt-controller",
         "#redistributor-regions")
    assert fdt.cells(ours["/intc@8000000"]["reg"])[:6] == fdt.cells(theirs["/intc@8000000"]["reg"])[:6]
    same(ours["/pl011@9000000"], theirs["/pl011@9000000"], "compatible", "reg", "interrupts", "clock-names")
    same(ours["/memory@40000000"], theirs["/memory@40000000"], "reg", "device_type")
    same(ours["/flash@0"], theirs["/flash@0"], "compatible", "bank-width")
    same(ours["/chosen"], theirs["/chosen"], "stdout-path")


def gicv2_virt(tmp_path: Path) -> Path:
    """boards/arm64-virt.yaml with the GICv2 fragment (boards/lib/arm-gicv2.yaml) in place of the GICv3."""
    shutil.copytree(ROOT / "boards", tmp_path / "boards")
    text = (ROOT / "boards" / "arm64-virt.yaml").read_text(encoding="utf-8")
    old = "gic: {use: lib/arm-gicv3.yaml,"
    assert old in text
    path = tmp_path / "boards" / "v2.yaml"
    path.write_text(text.replace(old, "gic: {use: lib/arm-gicv2.yaml,"), encoding="utf-8")
    return path


def test_arm64_virt_with_a_gicv2_matches_qemu_virt(tmp_path: Path) -> None:
    """Plain -M virt's GICv2: its compatible and addresses, and PPIs whose flags carry the CPU mask (0x304)."""
    theirs = qemu_dtb(tmp_path, "aarch64", "virt", "-cpu", "cortex-a57", "-smp", "2")
    ours = fdt.parse(tree_of(gicv2_virt(tmp_path)).to_dtb())
    same(ours["/timer"], theirs["/timer"], "compatible", "interrupts", "always-on")
    same(ours["/pmu"], theirs["/pmu"], "compatible", "interrupts")
    assert fdt.cells(ours["/pmu"]["interrupts"]) == [1, 7, 0x304]
    same(ours["/intc@8000000"], theirs["/intc@8000000"], "compatible", "#interrupt-cells", "interrupt-controller")
    # The addresses agree; -M virt's sizes are its memory map's 64 KiB slots, ours QEMU's regions (revision 2).
    assert fdt.cells(ours["/intc@8000000"]["reg"])[1::4] == fdt.cells(theirs["/intc@8000000"]["reg"])[1::4]
    assert fdt.cells(ours["/intc@8000000"]["reg"])[3::4] == [0x1000, 0x2000]
    assert "interrupts" not in ours["/intc@8000000"]  # no virtualization extensions, no maintenance interrupt
    same(ours["/pl011@9000000"], theirs["/pl011@9000000"], "interrupts")


def test_binding_table_doc_is_generated_from_the_data() -> None:
    from machinedesc.devicetree.docgen import DOC, build_doc

    assert DOC.read_text(encoding="utf-8") == build_doc(), \
        "docs/devicetree.md is stale: run python -m machinedesc.devicetree.docgen"


def test_a_variant_of_a_binding_follows_the_properties(tmp_path: Path) -> None:
    """riscv.aclint.swi with sswi: 1 is the supervisor-mode SWI: another node name and compatible."""
    # mswi is a fragment in riscv-virt.yaml: the variant writes the device out instead.
    tree = tree_of(variant(tmp_path, """
components:
  mswi: {use: ~, with: ~, type: riscv.aclint.swi, props: {num-harts: 2, sswi: 1}, mmio: 0x2000000}
wiring:
  ipi: {count: 2, from: 'mswi.unnamed-gpio-out[${i}]', to: 'hart${i}.unnamed-gpio-in[1]'}
"""))
    check_with_dtc(tree)
    nodes = fdt.parse(tree.to_dtb())
    sswi = nodes["/soc/sswi@2000000"]
    assert fdt.strings(sswi["compatible"]) == ["riscv,aclint-sswi"]
    intc = [phandle_of(nodes, f"/cpus/cpu@{h}/interrupt-controller") for h in (0, 1)]
    assert fdt.cells(sswi["interrupts-extended"]) == [intc[0], 1, intc[1], 1]


# ---- the command ---------------------------------------------------------------------


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from machinedesc.cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_dtb_command_writes_blob_and_source(in_repo: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "virt.dtb"
    code, out, err = cli(["dtb", "boards/riscv-virt.yaml", "--set", "harts=4", "-o", str(target)], capsys)
    assert (code, out, err) == (0, "", "")
    assert target.read_bytes() == tree_of("riscv-virt.yaml", harts="4").to_dtb()
    code, out, _ = cli(["dtb", "boards/riscv-virt.yaml", "--format", "dts"], capsys)
    assert code == 0 and out == tree_of("riscv-virt.yaml").to_dts()


def test_dtb_command_errors(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(["dtb", "boards/riscv-virt.yaml", "--set", "hart=4"], capsys)
    assert code == 2 and "'hart' is not a parameter" in err
    code, _, err = cli(["dtb", "boards/riscv-virt.yaml", "-o", "boards/riscv-virt.yaml"], capsys)
    assert code == 2 and "an input of this command" in err
    assert (ROOT / "boards" / "riscv-virt.yaml").read_text().startswith("# yaml-language-server")


def test_plan_header_records_the_dtb_hash(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    code, out, _ = cli(["plan", "boards/arm64-virt.yaml", "--set", "cpus=3"], capsys)
    digest = hashlib.sha256(tree_of("arm64-virt.yaml", cpus="3").to_dtb()).hexdigest()
    assert code == 0 and f"\n# dtb: sha256 {digest} (the device tree of `machinedesc dtb`)\n" in out


def test_plan_without_dtc_says_the_hash_was_not_computed(in_repo: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))   # no dtc (nor anything else) on PATH
    monkeypatch.setenv("MACHINEDESC_CACHE", str(tmp_path / "cache"))
    code, out, err = cli(["plan", "boards/riscv-virt.yaml"], capsys)
    assert (code, err) == (0, "")
    assert "\n# dtb: not computed: dtc (device-tree-compiler) is not installed\n" in out
    assert cli(["validate", "boards/riscv-virt.yaml"], capsys)[0] == 0
    code, _, err = cli(["dtb", "boards/riscv-virt.yaml", "-o", str(tmp_path / "x.dtb")], capsys)
    assert code == 1 and "apt-get install device-tree-compiler" in err


def test_padding_is_room_inside_totalsize() -> None:
    tree = tree_of("riscv-virt.yaml")
    plain, padded = tree.to_dtb(), tree.to_dtb(padding=4096)
    assert len(padded) == len(plain) + 4096 and padded.endswith(bytes(4096))
    assert int.from_bytes(padded[4:8], "big") == len(padded)          # totalsize
    assert fdt.parse(padded) == fdt.parse(plain)


def test_dtb_check_reports_what_dtc_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("dtc") is None:
        missing("dtc is not installed (apt-get install device-tree-compiler; scripts/install.sh does)")
    board = variant(tmp_path, "devicetree:\n  nodes:\n    /soc/thing@20000000:\n      props: {compatible: x}\n")
    code, out, err = cli(["dtb", str(board), "--check", "--format", "dts"], capsys)
    assert code == 2 and out == ""
    assert "dtc on" in err and "Warning (unit_address_vs_reg): /soc/thing@20000000" in err
    code, out, err = cli(["dtb", str(ROOT / "boards" / "riscv-virt.yaml"), "--check", "--format", "dts"], capsys)
    assert (code, err) == (0, "") and out.startswith("/dts-v1/;")


def test_labels_never_collide(tmp_path: Path) -> None:
    """A component named like a generated label (a hart's interrupt controller, a clock) gets another one."""
    tree = tree_of(variant(tmp_path, "components:\n  hart0_intc:\n    type: riscv.sifive.test\n"
                                     "    mmio: 0x101000\n"))
    check_with_dtc(tree)
    dts = tree.to_dts()
    assert "hart0_intc: interrupt-controller" in dts and "hart0_intc_2: test@101000" in dts


def test_cpu_extension_properties_change_the_isa_in_qemus_order(tmp_path: Path) -> None:
    board = variant(tmp_path, "components:\n  hart${i}:\n    props: {h: false, v: true, zbkb: true, zba: false,"
                              " sv57: false, pmp: true}\n")
    nodes = fdt.parse(tree_of(board).to_dtb())
    cpu = nodes["/cpus/cpu@0"]
    exts = fdt.strings(cpu["riscv,isa-extensions"])
    assert exts[:7] == ["i", "m", "a", "f", "d", "c", "v"] and "h" not in exts and "zba" not in exts
    assert exts.index("zbb") < exts.index("zbkb") < exts.index("zbs")   # QEMU's isa_edata_arr order
    assert "pmp" not in exts                                             # not an extension
    assert fdt.strings(cpu["riscv,isa"])[0].startswith("rv64imafdcv_zic64b_")
    assert fdt.strings(cpu["mmu-type"]) == ["riscv,sv48"]


def test_cpu_extension_properties_against_qemu(tmp_path: Path) -> None:
    """With extension properties set, the tree lists a subsequence of what QEMU's own virt lists for the same
    CPU: never an extension the CPU lacks, in QEMU's order (QEMU's implied ones, v's zve*, may be missing)."""
    props = {"h": "false", "v": "true", "zbkb": "true", "zba": "false", "sv57": "false"}
    theirs = qemu_dtb(tmp_path, "riscv64", "virt,aclint=on", "-smp", "2",
                      "-cpu", "rv64," + ",".join(f"{k}={v}" for k, v in props.items()))
    board = variant(tmp_path, "components:\n  hart${i}:\n    props: {"
                              + ", ".join(f"{k}: {v}" for k, v in props.items()) + "}\n")
    ours = fdt.parse(tree_of(board).to_dtb())
    mine = fdt.strings(ours["/cpus/cpu@0"]["riscv,isa-extensions"])
    qemu = fdt.strings(theirs["/cpus/cpu@0"]["riscv,isa-extensions"])
    assert [e for e in qemu if e in mine] == mine
    assert set(qemu) - set(mine) == {"zve32f", "zve32x", "zve64f", "zve64d", "zve64x"}
    same(ours["/cpus/cpu@0"], theirs["/cpus/cpu@0"], "mmu-type")


def test_strings_and_bytes_are_written_as_dtc_reads_them() -> None:
    from machinedesc.devicetree.tree import Bytes, Node, cells, strings

    tree = DeviceTree(Node("", props={"#address-cells": cells(2), "#size-cells": cells(2),
                                      "model": strings('é "quoted" back\\slash\ttab'),
                                      "compatible": strings("a,b", "c"), "raw": Bytes(b"\x01\xff"),
                                      "wide": cells(0xFFFFFFFF, 0), "empty": None}))
    check_with_dtc(tree)
