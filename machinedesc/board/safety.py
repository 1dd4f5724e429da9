"""What a board or QMP file may not do without --allow-host-access: the host-access policy and its value checks.

A board (and a QMP file) is data: by default nothing in it may run a host
command, write a host file, read one other than an image loaded into guest
memory, or open a host device or network endpoint.  The tables below are the
policy (docs/format.md lists them with their reasons); the checks next to
them say why one value breaks it (``command_problem``, ``chardev_problem``,
``object_problem``, ``device_problem``, ``machine_problem``), plus the checks
that keep strings from smuggling options into QEMU's command line.  A
reviewer of the policy reads this one file: tables and the checks that apply
them.  ``safety_board.check_board`` applies it to every value of a board, at
its YAML position; ``check_qemu_argv`` and ``apply/configurator.py`` to a
QMP file for ``run``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..qemu.phases import EXIT_PRECONFIG, MACHINE_INIT

#: The flag that lifts the policy, named in every hint.
FLAG = "--allow-host-access"
HINT = (f"a board may not touch the host unless you allow it: if you trust this file, "
        f"pass {FLAG} on the command line")

#: QMP commands refused outright (from QEMU 10.0's QAPI schema, qapi/*.json), with the reason.
HOST_COMMANDS: Mapping[str, str] = {
    "human-monitor-command": "runs any monitor command, e.g. HMP migrate or dump-guest-memory",
    "migrate": "can run a shell command (exec: URI), write a host file (file:) or open a socket",
    "migrate-incoming": "can run a shell command (exec: URI), read a host file or listen on a socket",
    "migrate-recover": "opens a host socket",
    "dump-guest-memory": "writes guest memory to a host file",
    "dumpdtb": "writes the device tree to a host file",
    "memsave": "writes guest memory to a host file",
    "pmemsave": "writes guest memory to a host file",
    "screendump": "writes an image to a host file",
    "blockdev-add": "opens host files, devices or network storage",
    "blockdev-create": "creates image files on the host",
    "blockdev-change-medium": "opens a host file",
    "blockdev-snapshot-sync": "creates a host file",
    "drive-backup": "creates or writes a host file",
    "drive-mirror": "creates or writes a host file",
    "change-backing-file": "rewrites an image file's header",
    "x-blockdev-amend": "rewrites an image file",
    "block-commit": "rewrites image files",
    "block-stream": "rewrites image files",
    "block_resize": "resizes an image file",
    "blockdev-snapshot-internal-sync": "writes into an image file",
    "blockdev-snapshot-delete-internal-sync": "writes into an image file",
    "snapshot-save": "writes into image files",
    "snapshot-load": "reads image files",
    "snapshot-delete": "writes into image files",
    "block-export-add": "serves a block device on the host (NBD, FUSE, vhost-user)",
    "nbd-server-start": "listens on a host socket",
    "nbd-server-add": "serves a block device on the host",
    "xen-save-devices-state": "writes a host file",
    "xen-load-devices-state": "reads a host file",
    "dump-skeys": "writes the guest's storage keys to a host file (s390x)",
}

#: Commands a board's raw qmp: entries may never send, host access or not:
#: machinedesc itself moves the machine through its phases, runs the guest and
#: batches steps (an x-batch could hide any of these, or a host command, from the checks).
LIFECYCLE_COMMANDS: Mapping[str, str] = {
    MACHINE_INIT: "the plan sends it; a raw command chooses its phase with 'phase:'",
    EXIT_PRECONFIG: "the plan sends it; a raw command chooses its phase with 'phase:'",
    "quit": "it ends QEMU before the machine is built and verified",
    "cont": "apply starts the CPUs itself once the machine is verified (or not, with --paused)",
    "stop": "apply decides when the CPUs run (--paused keeps them stopped)",
    "x-batch": "apply sends runs of steps as one x-batch itself; give each command its own qmp: entry, "
               "so that each is checked and a failure is reported at its own line",
}

#: chardev backends that stay inside QEMU (or machinedesc's own terminal); every other one
#: (file, pipe, socket, udp, serial, tty, parallel, parport, pty, spicevmc, spiceport,
#: dbus, braille, ...) reads, writes or creates host files, devices or sockets.
SAFE_CHARDEVS = frozenset({"null", "stdio", "ringbuf", "memory", "mux", "hub", "msmouse", "wctablet",
                           "testdev", "vc", "qemu-vdagent"})

#: chardev options that touch the host whatever the backend.
HOST_CHARDEV_OPTIONS: Mapping[str, str] = {"logfile": "writes a host file", "path": "names a host file or socket",
                                           "fd": "uses a host file descriptor"}

#: netdev types that stay inside QEMU; every other one (user, tap, bridge, socket, stream,
#: dgram, vde, l2tpv3, vhost-user, vhost-vdpa, netmap, af-xdp) reaches the host's network,
#: and tap/bridge run host scripts.
SAFE_NETDEVS = frozenset({"hubport"})

#: QOM object types (object-add, backends:) that touch the host.
HOST_OBJECTS: Mapping[str, str] = {
    "memory-backend-file": "maps a host file (mem-path)",
    "memory-backend-shm": "creates a host shared-memory object",
    "memory-backend-epc": "opens a host SGX device",
    "rng-random": "reads a host file or device (filename)",
    "filter-dump": "writes a host file",
    "authz-list-file": "reads a host file",
    "authz-pam": "authenticates against the host's PAM",
    "tls-creds-anon": "reads host certificate files",
    "tls-creds-psk": "reads host key files",
    "tls-creds-x509": "reads host certificate files",
    "secret_keyring": "reads the host kernel keyring",
    "input-linux": "grabs a host input device",
    "input-barrier": "connects to a host network service",
    "can-host-socketcan": "opens a host CAN interface",
    "cryptodev-backend-lkcf": "uses the host kernel's crypto",
    "pr-manager-helper": "connects to a host socket",
    "dbus-vmstate": "connects to a host D-Bus",
    "dbus-display": "connects to a host D-Bus",
    "iommufd": "opens /dev/iommu",
    "x-remote-object": "uses a host file descriptor",
    "x-vfio-user-server": "listens on a host socket",
    "sev-guest": "opens a host SEV device",
    "sev-snp-guest": "opens a host SEV device",
    "tdx-guest": "uses the host's TDX",
}

#: QOM properties that name host files, on any object or device (e.g. secret's file=).
HOST_OBJECT_PROPS: Mapping[str, str] = {"file": "names a host file", "filename": "names a host file",
                                        "mem-path": "names a host file", "dir": "names a host directory"}

#: Device types (device_add, components:) that pass a host device or service through.
HOST_DEVICE_PREFIXES: Mapping[str, str] = {
    "vfio-": "passes a host device through",
    "vhost-scsi": "uses the host kernel's vhost",
    "vhost-vsock": "uses the host kernel's vhost",
    "vhost-vdpa": "uses a host vDPA device",
    "usb-host": "passes a host USB device through",
    "u2f-passthru": "passes a host security key through",
    "virtio-input-host": "grabs a host input device",
    "ccid-card-emulated": "uses the host's smart cards",
}

#: Machine properties that write host files.  The ones that read an image into guest
#: memory (kernel, initrd, firmware, dtb, bios, shim) are allowed, like the loader device.
HOST_MACHINE_PROPS: Mapping[str, str] = {
    "dumpdtb": "writes the device tree to a host file and exits",
}

#: chardev ids machinedesc uses itself (its QMP monitor).
RESERVED_CHARDEV = re.compile(r"machinedesc-.*")

_MACHINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: A QMP command name (a raw qmp: entry's execute).
COMMAND_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: Header options ``run`` accepts without --allow-host-access: what ``machinedesc plan`` writes,
#: and options that do not touch the host.  Value: does the option take an argument.
SAFE_QEMU_OPTIONS: Mapping[str, bool] = {
    "-M": True, "-machine": True, "-smp": True, "-m": True, "-cpu": True, "-accel": True, "-name": True,
    "-nodefaults": False, "-chardev": True, "-serial": True, "-mon": True, "-display": True, "-preconfig": False,
    "-S": False, "-no-shutdown": False, "-no-reboot": False,
    # Images read into guest memory, like the loader device's file.
    "-bios": True, "-kernel": True, "-initrd": True, "-dtb": True, "-append": True,
}


def escape_control(text: str) -> str:
    """``text`` with control characters escaped (\\x1b), for messages."""
    return text.encode("unicode_escape").decode("ascii") if _CONTROL.search(text) else text


def split_options(text: str) -> list[tuple[str, str]]:
    """QEMU option syntax ``a,b=c,d=e,,f`` as (key, value) pairs; a bare first word is ('', word)."""
    parts: list[str] = []
    cur = ""
    i = 0
    while i < len(text):
        if text[i] == ",":
            if text[i + 1:i + 2] == ",":
                cur += ","
                i += 2
                continue
            parts.append(cur)
            cur = ""
        else:
            cur += text[i]
        i += 1
    parts.append(cur)
    out: list[tuple[str, str]] = []
    for n, part in enumerate(parts):
        key, sep, value = part.partition("=")
        out.append((key, value) if sep else (("", part) if n == 0 else (part, "on")))
    return out


def chardev_problem(spec: str, allow_host: bool, with_id: bool = False) -> tuple[str, bool] | None:
    """Why a ``-chardev`` backend string is refused: (message, host access?), or None.

    Without ``with_id`` (a board's chardevs: entry) the string may not set the
    id; with it (a command line) the id may not be one machinedesc reserves.
    """
    if _CONTROL.search(spec):
        return f"control character in chardev backend '{escape_control(spec)}'", False
    opts = split_options(spec)
    kind = opts[0][1] if opts and opts[0][0] == "" else dict(opts).get("backend", "")
    for key, value in opts:
        if key == "id" and not with_id:
            return "a chardev backend may not set 'id' (the key under chardevs: is the id)", False
        if key == "id" and RESERVED_CHARDEV.fullmatch(value):
            return f"chardev id '{value}' is reserved for machinedesc's own QMP monitor", False
    if allow_host:
        return None
    if kind not in SAFE_CHARDEVS:
        return (f"chardev backend '{escape_control(kind)}' touches the host: it opens a host file, device "
                "or socket"), True
    for key, _ in opts:
        if key in HOST_CHARDEV_OPTIONS:
            return f"chardev option '{key}' touches the host: it {HOST_CHARDEV_OPTIONS[key]}", True
    return None


def machine_problem(machine: str) -> str | None:
    """Why a machine type name is refused, or None."""
    if not _MACHINE_NAME.fullmatch(machine):
        return (f"machine '{escape_control(machine)}' is not a machine type name (letters, digits, '.', '_', '-'); "
                "properties go under machine: {type: ..., props: {...}}")
    return None


def command_problem(command: str, arguments: Mapping[str, Any]) -> tuple[str, tuple[str | int, ...]] | None:
    """Why a QMP command touches the host: (message, path of the offending value in ``arguments``), or None."""
    if command in HOST_COMMANDS:
        return f"QMP command '{command}' touches the host: it {HOST_COMMANDS[command]}", ()
    check = _ARGUMENT_CHECKS.get(command)
    return check(arguments if isinstance(arguments, Mapping) else {}) if check else None


_Found = tuple[str, tuple[str | int, ...]] | None


def _transaction(args: Mapping[str, Any]) -> _Found:
    for i, action in enumerate(args.get("actions") or []):
        kind = str(action.get("type", "")) if isinstance(action, Mapping) else ""
        if kind in HOST_COMMANDS:
            return (f"transaction action '{kind}' touches the host: it {HOST_COMMANDS[kind]}",
                    ("actions", i, "type"))
    return None


def _chardev_add(args: Mapping[str, Any]) -> _Found:
    backend = args.get("backend")
    if not isinstance(backend, Mapping):
        return None
    kind = str(backend.get("type", ""))
    if kind not in SAFE_CHARDEVS:
        why = f"chardev backend '{escape_control(kind)}' touches the host: it opens a host file, device or socket"
        return why, ("backend", "type")
    data = backend.get("data")
    for key in HOST_CHARDEV_OPTIONS:
        if isinstance(data, Mapping) and key in data:
            return f"chardev option '{key}' touches the host: it {HOST_CHARDEV_OPTIONS[key]}", ("backend", "data", key)
    return None


def _netdev_add(args: Mapping[str, Any]) -> _Found:
    kind = str(args.get("type", ""))
    if kind not in SAFE_NETDEVS:
        why = (f"netdev type '{escape_control(kind)}' touches the host: it reaches the host's network "
               "(or runs host scripts)")
        return why, ("type",)
    return None


def _object_add(args: Mapping[str, Any]) -> _Found:
    found = object_problem(str(args.get("qom-type", "")), args)
    return (found[0], ("qom-type",) if found[1] is None else (found[1],)) if found else None


def _device_add(args: Mapping[str, Any]) -> _Found:
    found = device_problem(str(args.get("driver", "")), args)
    return (found[0], ("driver",) if found[1] is None else (found[1],)) if found else None


def _qom_set(args: Mapping[str, Any]) -> _Found:
    prop = str(args.get("property", ""))
    why = HOST_MACHINE_PROPS.get(prop) or HOST_OBJECT_PROPS.get(prop)
    return (f"property '{escape_control(prop)}' touches the host: it {why}", ("property",)) if why else None


def _x_batch(args: Mapping[str, Any]) -> _Found:
    """The first request of an x-batch (patch 44: QEMU runs each as if sent alone) that touches the host."""
    commands = args.get("commands")
    for i, request in enumerate(commands if isinstance(commands, list) else []):
        if not isinstance(request, Mapping):
            continue  # QEMU refuses it: "QMP input must be a JSON object"
        for key in ("execute", "exec-oob"):  # QEMU refuses exec-oob in a batch; refused here anyway
            name = request.get(key)
            if not isinstance(name, str):
                continue
            arguments = request.get("arguments")
            found = command_problem(name, arguments if isinstance(arguments, Mapping) else {})
            if found:
                return found[0], ("commands", i, *(("arguments", *found[1]) if found[1] else (key,)))
    return None


_ARGUMENT_CHECKS: Mapping[str, Callable[[Mapping[str, Any]], _Found]] = {
    "transaction": _transaction, "chardev-add": _chardev_add, "chardev-change": _chardev_add,
    "netdev_add": _netdev_add, "object-add": _object_add, "device_add": _device_add, "qom-set": _qom_set,
    "x-batch": _x_batch,
}


def object_problem(qom_type: str, props: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """Why an object of ``qom_type`` with ``props`` touches the host: (message, offending prop or None)."""
    if qom_type in HOST_OBJECTS:
        return f"object type '{escape_control(qom_type)}' touches the host: it {HOST_OBJECTS[qom_type]}", None
    for key in props:
        if key in HOST_OBJECT_PROPS:
            return f"property '{escape_control(key)}' touches the host: it {HOST_OBJECT_PROPS[key]}", key
    return None


def device_problem(driver: str, props: Mapping[str, Any]) -> tuple[str, str | None] | None:
    """Why a device of type ``driver`` with ``props`` touches the host: (message, offending prop or None).

    The ``loader`` device's ``file`` is allowed: it only reads an image into
    guest memory, the way ``--firmware`` loads an ELF file.
    """
    for prefix, why in HOST_DEVICE_PREFIXES.items():
        if driver.startswith(prefix):
            return f"device type '{escape_control(driver)}' touches the host: it {why}", None
    for key in props:
        if driver == "loader" and key == "file":
            continue
        if key in HOST_OBJECT_PROPS:
            return f"property '{escape_control(key)}' touches the host: it {HOST_OBJECT_PROPS[key]}", key
    return None


def check_qemu_argv(argv: Sequence[str]) -> str | None:
    """Why a ``# qemu:`` header's arguments (without the binary) are refused without --allow-host-access."""
    i = 0
    while i < len(argv):
        opt = argv[i]
        name = "-" + opt.lstrip("-") if opt.startswith("-") else opt
        if name not in SAFE_QEMU_OPTIONS:
            return f"QEMU option '{escape_control(opt)}' is not one machinedesc plan writes; it may touch the host"
        takes_value = SAFE_QEMU_OPTIONS[name]
        if takes_value and i + 1 < len(argv):
            why = _option_value_problem(name, argv[i + 1])
            if why:
                return why
        i += 2 if takes_value else 1
    return None


def _option_value_problem(name: str, value: str) -> str | None:
    if _CONTROL.search(value):
        return f"control character in '{escape_control(value)}'"
    if name in ("-M", "-machine"):
        opts = split_options(value)
        for key, _ in opts:
            if key in HOST_MACHINE_PROPS:
                return f"machine property '{key}' touches the host: it {HOST_MACHINE_PROPS[key]}"
        return machine_problem(opts[0][1]) if opts[0][0] == "" else None
    if name == "-chardev":
        found = chardev_problem(value, False, with_id=True)
        return found[0] if found else None
    if name == "-display" and split_options(value)[0] != ("", "none"):
        return f"-display {escape_control(value)} opens a window or a host service"
    if name == "-serial" and not (value.startswith("chardev:") or value in ("none", "null")):
        return f"-serial {escape_control(value)} may open a host file, device or socket (use -serial chardev:ID)"
    return None
