"""Facts about QEMU and the ways to talk to it.

Enters: a QEMU binary (found, or built from the patch series in qemu/) and
QMP commands to send. Leaves: a running ``QemuProcess``, a QMP ``Session``
with timeouts and death detection, the binary's probed capabilities, the
type database introspected from the binary (typedb), and the hand-kept type
table. Imports nothing from board/, plan/ or apply/.
"""
