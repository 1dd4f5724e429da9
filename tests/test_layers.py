"""The layering rule of docs/architecture.md: a module imports only from its own package and the layers below."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "machinedesc"

#: Bottom to top; a module may import from its own layer and those below.
LAYERS = {"__init__": 0, "errors": 0, "messages": 0, "source": 0, "storage": 0, "qemu": 1, "board": 2,
          "devicetree": 3, "boot": 4,
          "plan": 5, "apply": 6, "views": 6, "live": 7, "commands": 7, "cli": 8, "api": 8, "__main__": 9,
          "pytest_plugin": 9}
#: What board/ may take from qemu/: facts about QEMU, not the transport.
BOARD_FROM_QEMU = {"machinedesc.qemu.types", "machinedesc.qemu.phases", "machinedesc.qemu.typedb"}


def _imports(path: Path) -> list[str]:
    """The machinedesc modules (or packages) that ``path`` imports, as dotted names."""
    package = ["machinedesc", *path.relative_to(PACKAGE).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = [*base, *(node.module.split(".") if node.module else [])]
            else:
                module = (node.module or "").split(".")
            if module[0] != "machinedesc":
                continue
            # `from . import x` / `from .qemu import build`: the names may be modules.
            found.extend(".".join([*module, a.name]) for a in node.names)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.split(".")[0] == "machinedesc")
    return found


def _layer(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_module_imports_a_layer_above_its_own() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _layer(".".join(["machinedesc", *path.relative_to(PACKAGE).with_suffix("").parts]))
        for target in _imports(path):
            layer = _layer(target)
            if layer == "__version__":
                continue
            if LAYERS.get(layer, 0) > LAYERS[me]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {target}")
            elif layer != me and LAYERS.get(layer, 0) == LAYERS[me] > 0:
                # apply/ and views/ are side by side: neither uses the other.
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {target} (a package beside its own)")
            elif me == "board" and layer == "qemu" and not any(target.startswith(m) for m in BOARD_FROM_QEMU):
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {target} (board/ takes only types, phases)")
    assert wrong == []


def test_every_sub_package_says_what_enters_and_leaves() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        doc = ast.get_docstring(tree) or ""
        assert "Enters:" in doc and "Leaves:" in doc, init
        assert all(isinstance(n, ast.Expr) for n in tree.body), f"{init} re-exports or runs code"
