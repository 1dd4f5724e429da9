"""The guest's device tree, generated from the board.

Enters: a ``board.model.Board`` (validated), and the binding table
``devicetree/data/bindings.yaml`` (QEMU type -> compatible strings, reg,
interrupts, properties); for ``import-dtb``, a DTS or DTB file.
Leaves: a ``devicetree.tree.DeviceTree`` (``generate.generate``), written
as DTS text (``DeviceTree.to_dts``), or a flattened blob that the ``dtc``
compiler makes of that text (``DeviceTree.to_dtb``, ``devicetree.dtc``);
or, the table read in reverse, board YAML and a coverage report
(``dtimport.import_dtb``).
"""
