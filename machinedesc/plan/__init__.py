"""The plan stage: a checked board in, an ordered plan of QMP steps out.

Enters: ``board.model.Board`` (or a QMP configuration file, ``qmpfile``).
Leaves: ``steps.Plan``, the QMP commands per machine-init phase with where
each came from and what apply verifies, rendered as a .qmp file or JSON
lines. Nothing here starts QEMU.
"""
