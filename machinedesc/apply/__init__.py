"""The apply stage: a plan in, a running machine out.

Enters: ``plan.steps.Plan`` (from a board) or a parsed QMP file (``run``).
Leaves: a QEMU that was built over QMP, verified and let out of
``-preconfig``, attached to the terminal or detached; or an apply error that
names the step, its YAML line and QEMU's reply.
"""
