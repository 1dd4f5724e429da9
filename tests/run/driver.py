"""Test driver: runs machinedesc's real CLI, or apply on a Plan (as JSON data) the way the CLI's main() does.

``driver.py cli ARGS...`` is ``machinedesc ARGS...`` (machinedesc.cli.main);
``driver.py plan FILE`` reads ``{"plan": plan_to_data(Plan), "options": {...}}`` and calls
``apply_plan`` (for plans a board cannot express, e.g. a wrong check).
Errors become exit codes through ``machinedesc.cli.exit_status``, the CLI's own mapping.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from machinedesc.apply.engine import apply_plan
from machinedesc.apply.job import Options
from machinedesc.cli import exit_status
from machinedesc.plan.steps import plan_from_data


def main() -> int:
    mode = sys.argv[1]
    try:
        if mode == "cli":
            from machinedesc.cli import main as cli_main
            cli_main(sys.argv[2:])
        elif mode == "plan":
            data = json.loads(Path(sys.argv[2]).read_text())
            apply_plan(plan_from_data(data["plan"]), Options(**data["options"]))
        else:
            raise SystemExit(f"unknown mode {mode}")
    except SystemExit:
        raise
    except BaseException as err:  # noqa: BLE001 - as machinedesc.cli.main does
        return exit_status(err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
