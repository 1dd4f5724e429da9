"""Editor support, verified: the YAML language server editors run, driven over its protocol.

The server is the ``yaml-language-server`` npm package at the version pinned in
tools/editor/package-lock.json, which scripts/install-editor.sh (run by
scripts/install.sh, so by CI) installs into build/node/. It is the server the Red
Hat YAML extension for VS Code bundles and the one Neovim's ``yamlls`` starts. The
tests speak the Language Server Protocol to it the way an editor does: JSON-RPC
over its stdin/stdout, each message framed by a ``Content-Length`` header
(tests/lsp_client.py is that client).

What is checked, on copies of the catalog boards in a temporary catalog laid out
like the repository (``boards/``, ``schemas/board.schema.json``):

- the association users get: the ``# yaml-language-server: $schema=...`` modeline
  every catalog board starts with, resolved relative to the board file (the
  server runs in an empty directory with no workspace), and the ``yaml.schemas``
  setting docs/editors.md gives for VS Code and Neovim, read from that document;
- a typo is reported as an error (publishDiagnostics) at the line and column
  ``machinedesc validate`` names for it, and nothing else is reported;
- completion at the top level offers exactly the schema's top-level keys that
  the board does not have yet, inside a component the component keys;
- what docs/editors.md says the server does less well than ``machinedesc
  validate`` (variants, messages of alternatives and patterns) is what it does.

Without the server the tests skip loudly, and fail under CI (tests/needs.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from lsp_client import LanguageServer
from needs import missing

from machinedesc.cli import main

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "build" / "node" / "node_modules" / ".bin" / "yaml-language-server"
SCHEMA: dict[str, Any] = json.loads((ROOT / "schemas" / "board.schema.json").read_text(encoding="utf-8"))
BOARDS = sorted(p.name for p in (ROOT / "boards").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schemas/board.schema.json"
EDITORS_DOC = ROOT / "docs" / "editors.md"
#: Seconds to wait for one answer; the server answers in well under one.
WAIT = 15.0
#: LSP CompletionItemKind.Property, DiagnosticSeverity.Error.
PROPERTY, ERROR = 10, 1


def start_server(tmp: Path, settings: dict[str, Any], workspace: Path | None = None) -> LanguageServer:
    """A server started as an editor starts it, in an empty directory, with ``settings`` (no schema store:
    the tests have no network) and ``workspace`` as its one workspace folder, if any."""
    if not SERVER.exists():
        missing(f"the YAML language server is not installed ({SERVER.relative_to(ROOT)}; "
                "bash scripts/install-editor.sh installs it)")
    if shutil.which("node") is None:
        missing("Node.js is not installed (bash scripts/install-editor.sh installs it)")
    cwd = tmp / "cwd"
    cwd.mkdir()
    yaml_settings = {"schemaStore": {"enable": False}, **settings.get("yaml", {})}
    server = LanguageServer([str(SERVER), "--stdio"], cwd, tmp / "server.log", {**settings, "yaml": yaml_settings},
                            WAIT)
    folders = [{"uri": workspace.as_uri(), "name": workspace.name}] if workspace else None
    capabilities = {"workspace": {"configuration": True},
                    "textDocument": {"publishDiagnostics": {}, "hover": {"contentFormat": ["plaintext"]},
                                     "completion": {"completionItem": {"snippetSupport": False}}}}
    try:
        server.request("initialize", {"processId": os.getpid(), "rootUri": workspace.as_uri() if workspace else None,
                                      "capabilities": capabilities, "workspaceFolders": folders})
        server.notify("initialized", {})
        server.notify("workspace/didChangeConfiguration", {"settings": None})  # the server pulls settings
    except BaseException:
        with suppress(Exception):  # the first failure is the one to report
            server.close()
        raise
    return server


def make_catalog(root: Path) -> Path:
    """A copy of the repository's catalog under ``root``: boards/*.yaml and schemas/board.schema.json."""
    shutil.copytree(ROOT / "boards", root / "boards")
    (root / "schemas").mkdir()
    shutil.copy(ROOT / "schemas" / "board.schema.json", root / "schemas")
    return root


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_catalog(tmp_path_factory.mktemp("catalog"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LanguageServer]:
    """A server that knows no schema but the modelines: no settings, no workspace."""
    started = start_server(tmp_path_factory.mktemp("server"), {})
    try:
        yield started
    finally:
        started.close()


_opened = 0


def open_board(server: LanguageServer, path: Path, text: str) -> str:
    """Write ``text`` to a new file next to ``path`` (same directory: the modeline resolves from there) and
    open it in the server; its URI. Each call opens a new file, so no earlier result can answer for it."""
    global _opened
    _opened += 1
    copy = path.with_name(f"{path.stem}.{_opened}{path.suffix}")
    copy.write_text(text, encoding="utf-8")
    uri = copy.as_uri()
    server.notify("textDocument/didOpen",
                  {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}})
    return uri


Problem = tuple[int, int, str]  # 1-based line and column, as machinedesc prints them; message


def diagnose(server: LanguageServer, path: Path, text: str) -> set[Problem]:
    """The errors the server publishes for a board file ``path`` holding ``text``."""
    uri = open_board(server, path, text)
    published = server.wait_for("textDocument/publishDiagnostics", lambda p: p["uri"] == uri)
    problems = set()
    for diag in published["diagnostics"]:
        assert diag.get("severity") == ERROR, diag
        start = diag["range"]["start"]
        problems.add((start["line"] + 1, start["character"] + 1, diag["message"]))
    return problems


def complete(server: LanguageServer, path: Path, text: str, line: int, column: int) -> set[str]:
    """The property names the server offers at 1-based ``line``, ``column`` of ``text``."""
    uri = open_board(server, path, text)
    server.wait_for("textDocument/publishDiagnostics", lambda p: p["uri"] == uri)  # parsed and validated
    answer = server.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                        "position": {"line": line - 1, "character": column - 1}})
    items = answer["items"] if isinstance(answer, dict) else answer
    return {item["label"] for item in items if item.get("kind") == PROPERTY}


def top_level_keys(text: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z_]+):", text, re.MULTILINE))


def line_of(text: str, line: str) -> int:
    """1-based number of the line that is exactly ``line`` (which must occur once)."""
    lines = text.splitlines()
    assert lines.count(line) == 1, f"{line!r} occurs {lines.count(line)} times"
    return lines.index(line) + 1


def validate(board: Path, capsys: pytest.CaptureFixture[str]) -> tuple[set[tuple[int, int]], str]:
    """Where ``machinedesc validate board`` reports problems (1-based line and column, from its
    ``file:line:col: path: message`` lines), and its whole report."""
    with pytest.raises(SystemExit):
        main(["validate", str(board)])
    report = capsys.readouterr().err
    return {(int(line.split(":")[1]), int(line.split(":")[2])) for line in report.splitlines()
            if line.startswith(f"{board}:")}, report


# ------------------------------------------------------------------ the association users get


@pytest.mark.parametrize("board", BOARDS)
def test_catalog_board_is_clean_in_the_editor(board: str, server: LanguageServer, catalog: Path) -> None:
    """No problem on any catalog board, variants included: a key a variant takes from its base (system) is
    required only of boards that extend or include nothing (docs/editors.md)."""
    path = catalog / "boards" / board
    text = path.read_text(encoding="utf-8")
    keys = top_level_keys(text)
    assert set(SCHEMA["required"]) <= keys
    assert diagnose(server, path, text) == set()


def test_a_board_that_extends_nothing_must_name_its_system(server: LanguageServer, catalog: Path) -> None:
    """The other side of the variant rule: without extends/include, a missing system is an error."""
    path = catalog / "boards" / "soc.yaml"
    text = re.sub(r"^system: .*\n", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert diagnose(server, path, text) == {(line_of(text, "machinedesc: 1"), 1, 'Missing property "system".')}


def test_modeline_resolves_relative_to_the_board_file(server: LanguageServer, catalog: Path) -> None:
    """The same board one directory deeper finds no ../schemas/ there, and says so: the server (which runs
    in an empty directory, with no workspace) resolves the modeline from the file, as the boards expect."""
    deeper = catalog / "boards" / "deeper"
    deeper.mkdir()
    text = (catalog / "boards" / "soc.yaml").read_text(encoding="utf-8")
    [(_, _, message)] = diagnose(server, deeper / "soc.yaml", text)
    assert f"Unable to load schema from '{deeper.parent / 'schemas' / 'board.schema.json'}'" in message


# ------------------------------------------------------------------ typos, at the line machinedesc names


#: (board, a line as written, what replaces it, the errors expected (line offset from it, column, message)), on
#: boards that are clean in the editor. Each is also an error of `machinedesc validate` at the same place.
TYPOS = [
    pytest.param("soc.yaml", "summary: RISC-V SoC, a cluster of harts, RAM, a 16550 UART and an ACLINT timer",
                 "sumary: RISC-V SoC, a cluster of harts, RAM, a 16550 UART and an ACLINT timer",
                 {(0, 1, "Property sumary is not allowed.")}, id="top-level-key"),
    # A key of a component: the schema reaches it through additionalProperties and $ref to $defs.
    pytest.param("seed-a72.yaml", "    type: pl011", "    tpye: pl011",
                 {(-1, 3, 'Missing property "type".'), (0, 5, "Property tpye is not allowed.")}, id="component-key"),
    # A chardev id: propertyNames' pattern.
    pytest.param("soc.yaml", "  serial0: stdio", "  serial-0!: stdio",
                 {(0, 3, 'String does not match the pattern of "^[A-Za-z][A-Za-z0-9_.-]*$".')}, id="chardev-id"),
    pytest.param("soc.yaml", "    type: serial-mm", "    type: serial-mm\n    phase: later",
                 {(1, 12, 'Value is not accepted. Valid values: "initialized", "ready".')}, id="enum"),
    pytest.param("soc.yaml", "machinedesc: 1", "machinedesc: 2", {(0, 14, "Value must be 1.")}, id="version"),
    pytest.param("soc.yaml", "  serial0: stdio", "  serial0: stdio\n  serial0: stdio",
                 {(1, 3, "Map keys must be unique")}, id="duplicate-key"),
]


@pytest.mark.parametrize(("board", "line", "typo", "errors"), TYPOS)
def test_typo_is_reported_at_its_line(board: str, line: str, typo: str, errors: set[tuple[int, int, str]],
                                      server: LanguageServer, catalog: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = catalog / "boards" / board
    text = path.read_text(encoding="utf-8")
    at = line_of(text, line)
    broken = text.replace(f"\n{line}\n", f"\n{typo}\n")
    expected = {(at + offset, column, message) for offset, column, message in errors}
    assert diagnose(server, path, broken) == expected
    # machinedesc itself names the same places.
    copy = make_catalog(tmp_path) / "boards" / board
    copy.write_text(broken, encoding="utf-8")
    assert validate(copy, capsys)[0] == {(at_line, column) for at_line, column, _ in expected}


# ------------------------------------------------------------------ completion and hover


def test_completion_offers_every_top_level_key(server: LanguageServer, catalog: Path) -> None:
    text = f"{MODELINE}\nmachinedesc: 1\n\n"
    offered = complete(server, catalog / "boards" / "new.yaml", text, 3, 1)
    assert offered == set(SCHEMA["properties"]) - {"machinedesc"}


@pytest.mark.parametrize("board", BOARDS)
def test_completion_on_a_catalog_board_offers_the_keys_it_lacks(board: str, server: LanguageServer,
                                                                catalog: Path) -> None:
    path = catalog / "boards" / board
    text = path.read_text(encoding="utf-8")
    at = line_of(text, "machinedesc: 1") + 1
    lines = text.splitlines(keepends=True)
    edited = "".join(lines[:at - 1] + ["\n"] + lines[at - 1:])
    offered = complete(server, path, edited, at, 1)
    assert offered == set(SCHEMA["properties"]) - top_level_keys(text)
    assert offered  # every catalog board lacks some key, so the check above has something to compare


def test_completion_inside_a_component_offers_component_keys(server: LanguageServer, catalog: Path) -> None:
    path = catalog / "boards" / "soc.yaml"
    text = path.read_text(encoding="utf-8")
    at = line_of(text, "  uart0:") + 1
    lines = text.splitlines(keepends=True)
    edited = "".join(lines[:at - 1] + ["    \n"] + lines[at - 1:])
    offered = complete(server, path, edited, at, 5)
    assert offered == set(SCHEMA["$defs"]["component"]["properties"]) - {"type", "props", "mmio"}


def test_hover_shows_the_schema_description(server: LanguageServer, catalog: Path) -> None:
    path = catalog / "boards" / "soc.yaml"
    text = path.read_text(encoding="utf-8")
    uri = open_board(server, path, text)
    server.wait_for("textDocument/publishDiagnostics", lambda p: p["uri"] == uri)
    hover = server.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                  "position": {"line": line_of(text, "chardevs:") - 1, "character": 2}})
    contents = hover["contents"]
    shown = contents["value"] if isinstance(contents, dict) else str(contents)
    assert SCHEMA["properties"]["chardevs"]["description"] in shown


# ------------------------------------------------------------------ what the server does less well (docs/editors.md)


#: (board, line as written, the line changed, the message, as docs/editors.md quotes it).
WEAKER = [
    # An integer-or-expression alternative (oneOf): the message names the types, not the expression form.
    ("soc.yaml", "    mmio: 0x10000000", "    mmio: 0x1000_0000", 'Incorrect type. Expected "integer | array".'),
    # A pattern: the message is the regular expression.
    ("a72-dma.yaml", "    to: cpu0.unnamed-gpio-in[0]   # ARM_CPU_IRQ", "    to: cpu0",
     'String does not match the pattern of "' + SCHEMA["$defs"]["line"]["pattern"] + '".'),
]


@pytest.mark.parametrize(("board", "line", "changed", "message"), WEAKER, ids=["alternatives", "pattern"])
def test_messages_the_doc_quotes(board: str, line: str, changed: str, message: str, server: LanguageServer,
                                 catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The editor's message is the one docs/editors.md quotes; machinedesc validate reports the same line
    with a hint saying what to write."""
    path = catalog / "boards" / board
    text = path.read_text(encoding="utf-8")
    at = line_of(text, line)
    broken = text.replace(f"\n{line}\n", f"\n{changed}\n")
    [(got_line, got_column, got)] = diagnose(server, path, broken)
    assert (got_line, got) == (at, message)
    assert f"`{message}`" in EDITORS_DOC.read_text(encoding="utf-8"), "docs/editors.md no longer quotes it"
    copy = make_catalog(tmp_path) / "boards" / board
    copy.write_text(broken, encoding="utf-8")
    places, report = validate(copy, capsys)
    assert places == {(got_line, got_column)}
    assert "hint: write " in report


# ------------------------------------------------------------------ the yaml.schemas setting of docs/editors.md


def doc_block(language: str) -> str:
    """The one fenced block of ``language`` in docs/editors.md."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", EDITORS_DOC.read_text(encoding="utf-8"),
                        re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"docs/editors.md has {len(blocks)} ```{language} blocks, want 1"
    return str(blocks[0])


def test_vscode_setting_of_the_doc(tmp_path: Path) -> None:
    """The settings.json of docs/editors.md, served as VS Code serves it (workspace/configuration, section
    yaml), with the repository as workspace: a board without the modeline under boards/ is checked, one
    elsewhere is not. The Neovim snippet names the same schema and files."""
    vscode: dict[str, Any] = json.loads(doc_block("json"))
    settings = {"yaml": {key.removeprefix("yaml."): value for key, value in vscode.items() if key.startswith("yaml.")}}
    workspace = make_catalog(tmp_path / "repo")
    server = start_server(tmp_path, settings, workspace)
    try:
        text = (workspace / "boards" / "soc.yaml").read_text(encoding="utf-8").replace(f"{MODELINE}\n", "")
        typo = text.replace("\nsummary:", "\nsumary:")
        at = line_of(typo, "sumary: RISC-V SoC, a cluster of harts, RAM, a 16550 UART and an ACLINT timer")
        assert diagnose(server, workspace / "boards" / "soc.yaml", typo) == {(at, 1, "Property sumary is not allowed.")}
        (workspace / "elsewhere").mkdir()
        assert diagnose(server, workspace / "elsewhere" / "soc.yaml", typo) == set()
    finally:
        server.close()
    lua = doc_block("lua")
    for schema, files in settings["yaml"]["schemas"].items():
        assert f'["{schema}"]' in lua
        for pattern in files if isinstance(files, list) else [files]:
            assert f'"{pattern}"' in lua
