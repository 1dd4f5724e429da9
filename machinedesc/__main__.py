"""``python -m machinedesc``: the same command line as the ``machinedesc`` script."""

from .cli import main

main()
