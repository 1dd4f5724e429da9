"""apply starts QEMU before it imports the engine: a signal or a failure in between leaves nothing behind.

QEMU runs from the moment apply has the plan (machinedesc.apply.spawn.start_early)
while Python still imports asyncio, qemu.qmp and the engine. An import hook
holds apply in that window (at the engine's import) and the test ends it there:
by a signal (exit 128+N, QEMU stopped, its directory removed) or by a failing
import (exit 1, the same clean-up). Needs the patched QEMU.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
from harness import REPO, Sandbox, StderrWatcher

#: ``machinedesc ARGS``, held when it imports the engine: HOLD=wait sleeps there; HOLD=FILE waits
#: until FILE exists, then raises ImportError.
HELD = """\
import importlib.abc, os, sys, time

class Hold(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "machinedesc.apply.engine":
            os.write(2, b"held at the engine's import\\n")
            hold = os.environ["HOLD"]
            if hold == "wait":
                time.sleep(60)
            else:
                while not os.path.exists(hold):
                    time.sleep(0.01)
                raise ImportError("the engine cannot be imported (a test)")
        return None

sys.meta_path.insert(0, Hold())
from machinedesc.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_while_the_engine_is_imported_stops_the_early_qemu(sandbox: Sandbox, patched_riscv64: Path,
                                                                  signum: signal.Signals) -> None:
    sandbox.env["HOLD"] = "wait"
    proc = sandbox.start([sys.executable, "-c", HELD, "apply", str(REPO / "boards" / "soc.yaml"),
                          "--qemu", str(patched_riscv64)])
    err = StderrWatcher(proc)
    err.wait_for("held at the engine's import")
    sandbox.wait_qemu()  # QEMU is up before the engine is imported
    proc.send_signal(signum)
    assert proc.wait(20) == 128 + signum
    assert f"machinedesc: interrupted ({signum.name})" in err.finish()
    proc.communicate()
    sandbox.assert_clean()


def test_a_failure_while_the_engine_is_imported_stops_the_early_qemu(sandbox: Sandbox,
                                                                   patched_riscv64: Path) -> None:
    go = sandbox.base / "go"
    sandbox.env["HOLD"] = str(go)
    proc = sandbox.start([sys.executable, "-c", HELD, "apply", str(REPO / "boards" / "soc.yaml"),
                          "--qemu", str(patched_riscv64)])
    err = StderrWatcher(proc)
    err.wait_for("held at the engine's import")
    sandbox.wait_qemu()
    go.touch()
    assert proc.wait(30) == 1
    text = err.finish()
    assert "ImportError: the engine cannot be imported (a test)" in text, text
    assert "internal error (a bug)" in text
    proc.communicate()
    sandbox.assert_clean()
