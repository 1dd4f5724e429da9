"""Test driver: runs machinedesc's apply (a pickled Plan) or `run` command the way the CLI's main() does.

``driver.py run ARGS...`` runs the click command ``run_cmd``; ``driver.py plan
FILE`` unpickles ``(Plan, options)`` and calls ``apply_plan``.  Errors become
exit codes exactly as in ``machinedesc.cli.main``: MachinedescError ->
``str(err)`` on stderr and ``err.exit_code``; click usage errors -> 2;
KeyboardInterrupt -> 130.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import click

from machinedesc.apply import Options, apply_plan
from machinedesc.errors import MachinedescError


def main() -> int:
    mode = sys.argv[1]
    try:
        if mode == "run":
            from machinedesc.cli_run import run_cmd
            run_cmd.main(sys.argv[2:], prog_name="machinedesc run", standalone_mode=False)
        elif mode == "plan":
            plan, options = pickle.loads(Path(sys.argv[2]).read_bytes())
            apply_plan(plan, Options(**options))
        else:
            raise SystemExit(f"unknown mode {mode}")
    except MachinedescError as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    except click.ClickException as err:
        err.show()
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
