"""A machine kept alive for a program: built over QMP, then handed over with its console and monitor.

Enters: a ``Plan`` (through ``apply.job.plan_job``), the patched QEMU.
Leaves: a running ``Machine`` / ``AsyncMachine`` (``machine``) with its
``Console`` (``console``), which the public API (``machinedesc.api``) and the
pytest plugin (``machinedesc.pytest_plugin``) return to their callers; on
leaving their ``with`` block QEMU is gone and its directory removed.
"""
