"""Booting from the board: guest images, their placement in memory and the reset code.

Enters: a checked ``board.model.Board``, the board's ``boot:`` section and the
command line's ``--bios/--kernel/--initrd/--append/--dtb``, and the image
files they name. Leaves: a ``boot.setup.BootSetup``: the CPU properties the
reset code needs (reset vectors, powered-off secondaries), the components it
adds (the boot ROM), the ``loader`` devices that put every image, the device
tree and the reset code in memory, and the placement report for ``plan``.
Errors are ``BoardError`` problems located at the board's ``boot:`` entry
(or the option) and naming the file.
"""
