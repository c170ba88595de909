"""The architecture docs stay true: the entity diagrams match the migrations, and every Mermaid block is well formed.

``docs/entities.md`` draws the central tables in ``erDiagram`` blocks marked ``%% db: central`` and the session files'
tables in blocks marked ``%% db: inbound`` / ``%% db: outbound``. The central schema is built by applying every file in
``nanoclaw_app/db/migrations/`` (read at test time, so a new migration fails here until it is drawn) to an empty
database; ``schema_migrations`` is not in any file (``db/migrate.py`` creates it) and is not part of the model.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent_runner.protocol import INBOUND_SCHEMA, OUTBOUND_SCHEMA
from nanoclaw_app.db.migrate import migrations_dir

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ARCHITECTURE_DOCS = ("architecture.md", "message-path.md", "entities.md", "session-store.md", "isolation.md")
DIAGRAM_TYPES = frozenset({
    "flowchart", "graph", "sequenceDiagram", "erDiagram", "stateDiagram", "stateDiagram-v2", "classDiagram",
    "gantt", "pie", "journey", "gitGraph", "mindmap", "timeline",
})
NOT_IN_MODEL = frozenset({"sqlite_sequence"})
"""SQLite's own bookkeeping for AUTOINCREMENT; ``schema_migrations`` never appears since no migration file makes it."""

_MERMAID = re.compile(r"^```mermaid\n(.*?)^```", re.S | re.M)
_ENTITY_OPEN = re.compile(r"^([A-Za-z_][\w-]*)\s*\{$")
_ATTRIBUTE = re.compile(r'^(\w+)\s+(\w+)(?:\s+((?:PK|FK|UK)(?:\s*,\s*(?:PK|FK|UK))*))?(?:\s+"[^"]*")?$')
_CARDINALITY = re.compile(r"[|}o]{2}(?:--|\.\.)[|{o]{2}")
_RELATION = re.compile(r"^([A-Za-z_]\w*)\s+([|}o]{2})(--|\.\.)([|{o]{2})\s+([A-Za-z_]\w*)\s*:\s*(\"[^\"]*\"|\S+)$")


@dataclass(frozen=True, slots=True)
class Column:
    """A column as the diagram or the schema has it."""

    type: str
    pk: bool
    fk: bool


@dataclass
class Diagram:
    """The tables of the ``erDiagram`` blocks of one kind (central, inbound or outbound)."""

    tables: dict[str, dict[str, Column]] = field(default_factory=dict)
    mentioned: set[str] = field(default_factory=set)
    solid: set[frozenset[str]] = field(default_factory=set)
    """Pairs of tables joined by a solid line (a foreign key the database enforces)."""
    defined_twice: list[str] = field(default_factory=list)


def mermaid_blocks(path: Path) -> list[str]:
    """The text of every ```mermaid fenced block of a Markdown file."""
    return _MERMAID.findall(path.read_text(encoding="utf-8"))


def _lines(block: str) -> list[str]:
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("%%")]


def parse_er(blocks: list[str]) -> dict[str, Diagram]:
    """Parse ``erDiagram`` blocks by their ``%% db: <kind>`` marker; a line that is not understood fails the test."""
    diagrams: dict[str, Diagram] = {}
    for block in blocks:
        marker = re.search(r"^\s*%% db: (\w+)\s*$", block, re.M)
        if not block.lstrip().startswith("erDiagram"):
            continue
        assert marker is not None, f"an erDiagram in entities.md has no '%% db: <kind>' line:\n{block[:200]}"
        diagram = diagrams.setdefault(marker.group(1), Diagram())
        entity: str | None = None
        for line in _lines(block)[1:]:
            if entity is not None:
                if line == "}":
                    entity = None
                    continue
                attribute = _ATTRIBUTE.match(line)
                assert attribute is not None, f"unreadable attribute line in {entity}: {line!r}"
                keys = {k.strip() for k in (attribute.group(3) or "").split(",") if k.strip()}
                diagram.tables[entity][attribute.group(2)] = Column(attribute.group(1).upper(), "PK" in keys,
                                                                   "FK" in keys)
                continue
            opened = _ENTITY_OPEN.match(line)
            if opened is not None:
                entity = opened.group(1)
                if entity in diagram.tables:
                    diagram.defined_twice.append(entity)
                diagram.tables[entity] = {}
                continue
            relation = _RELATION.match(line)
            assert relation is not None, f"unreadable erDiagram line: {line!r}"
            left, right = relation.group(1), relation.group(5)
            diagram.mentioned |= {left, right}
            if relation.group(3) == "--":
                diagram.solid.add(frozenset({left, right}))
        assert entity is None, f"entity {entity} is never closed"
    return diagrams


def schema_of(conn: sqlite3.Connection) -> Diagram:
    """The tables, columns and foreign keys of a real database, in the diagram's terms."""
    schema = Diagram()
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    for table in names:
        if table in NOT_IN_MODEL:
            continue
        fks = {(r[3], r[2]) for r in conn.execute(f"PRAGMA foreign_key_list({table})")}
        schema.tables[table] = {
            r[1]: Column(r[2].upper(), r[5] > 0, any(col == r[1] for col, _ in fks))
            for r in conn.execute(f"PRAGMA table_info({table})")
        }
        schema.solid |= {frozenset({table, parent}) for _, parent in fks}
    return schema


def central_schema(folder: Path) -> Diagram:
    """Apply every migration file in ``folder``, in order, to an empty database."""
    conn = sqlite3.connect(":memory:")
    try:
        for path in sorted(folder.glob("*.sql")):
            conn.executescript(path.read_text(encoding="utf-8"))
        return schema_of(conn)
    finally:
        conn.close()


def session_schema(script: str) -> Diagram:
    """One session file's schema from the protocol."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(script)
        return schema_of(conn)
    finally:
        conn.close()


def differences(drawn: Diagram, real: Diagram) -> list[str]:
    """Every way the diagram and the database disagree, in words (empty when they agree)."""
    problems = [f"{t} is drawn with its columns more than once" for t in drawn.defined_twice]
    problems += [f"table {t} exists but is not drawn" for t in sorted(set(real.tables) - set(drawn.tables))]
    problems += [f"table {t} is drawn but does not exist" for t in sorted(set(drawn.tables) - set(real.tables))]
    problems += [f"{t} appears in a relationship but is no table"
                 for t in sorted(drawn.mentioned - set(real.tables))]
    for table in sorted(set(drawn.tables) & set(real.tables)):
        want, have = real.tables[table], drawn.tables[table]
        problems += [f"column {table}.{c} is not drawn" for c in want if c not in have]
        problems += [f"column {table}.{c} is drawn but does not exist" for c in have if c not in want]
        problems += [f"column {table}.{c} is drawn as {have[c]} but is {want[c]}"
                     for c in want if c in have and have[c] != want[c]]
    problems += [f"foreign key between {' and '.join(sorted(p))} is not drawn as a solid line"
                 for p in real.solid - drawn.solid]
    problems += [f"solid line between {' and '.join(sorted(p))} is no foreign key (draw it dotted)"
                 for p in drawn.solid - real.solid]
    return problems


@pytest.fixture(scope="module")
def drawn() -> dict[str, Diagram]:
    return parse_er(mermaid_blocks(DOCS / "entities.md"))


def test_entity_diagram_holds_every_table_and_column_of_the_migrations(drawn: dict[str, Diagram]) -> None:
    assert differences(drawn["central"], central_schema(migrations_dir())) == []


@pytest.mark.parametrize(("kind", "script"), [("inbound", INBOUND_SCHEMA), ("outbound", OUTBOUND_SCHEMA)])
def test_session_file_diagrams_match_the_protocol_schemas(drawn: dict[str, Diagram], kind: str, script: str) -> None:
    assert differences(drawn[kind], session_schema(script)) == []


def test_a_table_added_by_a_new_migration_is_reported_until_drawn(drawn: dict[str, Diagram], tmp_path: Path) -> None:
    for path in migrations_dir().glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "9999_household.sql").write_text(
        "CREATE TABLE person_memory (user_id TEXT PRIMARY KEY REFERENCES users(id));\n"
        "ALTER TABLE sessions ADD COLUMN household TEXT;\n",
        encoding="utf-8",
    )
    problems = differences(drawn["central"], central_schema(tmp_path))
    assert "table person_memory exists but is not drawn" in problems
    assert "column sessions.household is not drawn" in problems


@pytest.mark.parametrize("name", ARCHITECTURE_DOCS)
def test_every_architecture_page_has_well_formed_mermaid_diagrams(name: str) -> None:
    blocks = mermaid_blocks(DOCS / name)
    assert blocks, f"docs/{name} has no Mermaid diagram"
    for block in blocks:
        lines = _lines(block)
        kind = lines[0].split()[0] if lines else ""
        assert kind in DIAGRAM_TYPES, f"docs/{name}: unknown diagram type {kind!r}"
        assert _balanced(block), f"docs/{name}: unbalanced brackets or quotes in:\n{block[:300]}"
        if kind == "sequenceDiagram":
            # A semicolon ends a statement in a sequence diagram: text after it breaks the parse.
            assert not any(";" in line for line in lines), f"docs/{name}: ';' inside a sequence diagram"


def test_the_docs_link_to_pages_that_exist() -> None:
    for name in ARCHITECTURE_DOCS:
        for target in re.findall(r"\]\(([\w.-]+\.md)(?:#[\w-]*)?\)", (DOCS / name).read_text(encoding="utf-8")):
            assert (DOCS / target).is_file(), f"docs/{name} links to missing docs/{target}"


def _balanced(block: str) -> bool:
    """Brackets balance and quotes close on every line, ignoring brackets inside quoted labels."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for line in block.splitlines():
        if line.strip().startswith("%%"):
            continue
        if line.count('"') % 2:
            return False
        line = _CARDINALITY.sub(" ", line)  # erDiagram's |o--o{ marks are not brackets
        for i, part in enumerate(line.split('"')):
            if i % 2:
                continue  # inside a quoted label
            for char in part:
                if char in "([{":
                    stack.append(char)
                elif char in pairs and (not stack or stack.pop() != pairs[char]):
                    return False
    return not stack
