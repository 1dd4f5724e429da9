"""The board stage: a board file in, a checked ``Board`` out.

Enters: a YAML board file (with its includes) and ``--set`` overrides.
Leaves: ``model.Board``, frozen dataclasses with every value's YAML position,
or a ``BoardError`` listing every problem found (syntax, schema, expressions,
cross-references, the host-access policy). Nothing here talks to QEMU.
"""
