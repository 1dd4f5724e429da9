"""The guest's device tree, generated from the board.

Enters: a ``board.model.Board`` (validated), and the binding table
``devicetree/data/bindings.yaml`` (QEMU type -> compatible strings, reg,
interrupts, properties).
Leaves: a ``devicetree.tree.DeviceTree`` (``generate.generate``), written
as DTS text (``DeviceTree.to_dts``), or a flattened blob that the ``dtc``
compiler makes of that text (``DeviceTree.to_dtb``, ``devicetree.dtc``).
"""
