"""machinedesc: declarative YAML machine descriptions for QEMU, applied over QMP."""

__version__ = "0.1.0"
