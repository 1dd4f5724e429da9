"""Seeing boards: the catalog as a table, one board's components, memory map and interrupts, its
picture (Graphviz), and the difference by meaning between two boards or two git revisions of one.

Enters: board files (and git revisions of them), loaded through ``plan.pipeline``: the ``Board``
model, the wires as the planner lowers them (split-irq / or-irq inserted), the plan's step count.
Leaves: text, JSON and DOT/SVG/PNG for people and tools; nothing here starts QEMU or changes a board.
"""
