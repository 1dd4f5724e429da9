"""Hand-written device trees for the boot tests' own boards (tests/data/boot), compiled with dtc.

Only for boards the device-tree generator does not cover; the catalog boards
boot with the generated tree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from needs import missing


def riscv_mini_dts(harts: int, ram_size: int = 256 << 20) -> str:
    """The DTS of tests/data/boot/riscv-mini.yaml with ``harts`` harts."""
    cpus = "".join(
        f"""
        cpu@{i} {{ device_type = "cpu"; reg = <{i}>; status = "okay"; compatible = "riscv";
            riscv,isa = "rv64imafdc"; mmu-type = "riscv,sv48";
            cpu{i}_intc: interrupt-controller {{ #interrupt-cells = <1>; interrupt-controller;
                compatible = "riscv,cpu-intc"; }}; }};""" for i in range(harts))
    clint = " ".join(f"&cpu{i}_intc 3 &cpu{i}_intc 7" for i in range(harts))
    return f"""/dts-v1/;
/ {{
    #address-cells = <2>; #size-cells = <2>;
    compatible = "riscv-virtio"; model = "riscv-mini";
    chosen {{ stdout-path = "/soc/serial@10000000"; }};
    memory@80000000 {{ device_type = "memory"; reg = <0x0 0x80000000 0x0 {ram_size:#x}>; }};
    cpus {{ #address-cells = <1>; #size-cells = <0>; timebase-frequency = <10000000>;{cpus}
    }};
    soc {{
        #address-cells = <2>; #size-cells = <2>; compatible = "simple-bus"; ranges;
        serial@10000000 {{ compatible = "ns16550a"; reg = <0x0 0x10000000 0x0 0x100>;
            clock-frequency = <3686400>; }};
        clint@2000000 {{ compatible = "sifive,clint0", "riscv,clint0"; reg = <0x0 0x2000000 0x0 0x10000>;
            interrupts-extended = <{clint}>; }};
        test@100000 {{ compatible = "sifive,test1", "sifive,test0", "syscon"; reg = <0x0 0x100000 0x0 0x1000>; }};
    }};
}};
"""


def arm64_mini_dts(cpus: int, ram_size: int = 512 << 20) -> str:
    """The DTS of tests/data/boot/arm64-mini.yaml with ``cpus`` CPUs."""
    cpu_nodes = "".join(
        f"""
        cpu@{i} {{ device_type = "cpu"; compatible = "arm,cortex-a57"; reg = <{i}>;
            enable-method = "psci"; }};""" for i in range(cpus))
    return f"""/dts-v1/;
/ {{
    #address-cells = <2>; #size-cells = <2>;
    compatible = "linux,dummy-virt"; model = "arm64-mini";
    interrupt-parent = <&gic>;
    chosen {{ stdout-path = "/pl011@9000000"; }};
    memory@40000000 {{ device_type = "memory"; reg = <0x0 0x40000000 0x0 {ram_size:#x}>; }};
    psci {{ compatible = "arm,psci-1.0", "arm,psci-0.2", "arm,psci"; method = "hvc"; }};
    cpus {{ #address-cells = <1>; #size-cells = <0>;{cpu_nodes}
    }};
    timer {{ compatible = "arm,armv8-timer"; always-on;
        interrupts = <1 13 4>, <1 14 4>, <1 11 4>, <1 10 4>; }};
    apb_pclk: apb-pclk {{ compatible = "fixed-clock"; #clock-cells = <0>; clock-frequency = <24000000>;
        clock-output-names = "clk24mhz"; }};
    gic: intc@8000000 {{ compatible = "arm,gic-v3"; #interrupt-cells = <3>; interrupt-controller;
        #address-cells = <2>; #size-cells = <2>; ranges;
        reg = <0x0 0x8000000 0x0 0x10000>, <0x0 0x80a0000 0x0 {0x20000 * cpus:#x}>;
        interrupts = <1 9 4>; }};
    pl011@9000000 {{ compatible = "arm,pl011", "arm,primecell"; reg = <0x0 0x9000000 0x0 0x1000>;
        interrupts = <0 1 4>; clocks = <&apb_pclk>, <&apb_pclk>; clock-names = "uartclk", "apb_pclk"; }};
    flash@0 {{ compatible = "cfi-flash"; bank-width = <4>; reg = <0x0 0x0 0x0 0x4000000>, <0x0 0x4000000 0x0 0x4000000>; }};
}};
"""


def compile_dts(text: str, out: Path) -> Path:
    """``text`` compiled with dtc into ``out``; dtc's warnings fail the test."""
    dtc = shutil.which("dtc")
    if dtc is None:
        missing("dtc is not installed (apt-get install device-tree-compiler)")
    res = subprocess.run([str(dtc), "-I", "dts", "-O", "dtb", "-o", str(out), "-"], input=text,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    return out
