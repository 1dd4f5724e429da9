"""Test driver: runs machinedesc's real CLI, or apply on a pickled Plan the way the CLI's main() does.

``driver.py cli ARGS...`` is ``machinedesc ARGS...`` (machinedesc.cli.main);
``driver.py plan FILE`` unpickles ``(Plan, options)`` and calls
``apply_plan`` (for plans a board cannot express, e.g. a wrong check).
Errors become exit codes as in ``machinedesc.cli.main``: MachinedescError ->
``str(err)`` on stderr and ``err.exit_code``; KeyboardInterrupt -> 130.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

from machinedesc.apply import Options, apply_plan
from machinedesc.errors import MachinedescError


def main() -> int:
    mode = sys.argv[1]
    try:
        if mode == "cli":
            from machinedesc.cli import main as cli_main
            cli_main(sys.argv[2:])
        elif mode == "plan":
            plan, options = pickle.loads(Path(sys.argv[2]).read_bytes())
            apply_plan(plan, Options(**options))
        else:
            raise SystemExit(f"unknown mode {mode}")
    except MachinedescError as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
