"""The command line's commands, one module per family; ``machinedesc.cli`` puts them under one group.

Enters: the command line's arguments and options, parsed by click.
Leaves: the library's results printed or written (plans, device trees, boards, views), or a machine
built in QEMU; failures as MachinedescError, which ``cli.main`` turns into exit statuses.

A module here imports at its top only click and the option helpers
(``commands.options``): each command imports what it uses when it runs, so
that ``machinedesc --help`` loads no YAML, schema, graph, ELF or asyncio
library and ``apply`` of a planned board none of the planner's
(``tests/test_imports.py`` checks it).
"""
