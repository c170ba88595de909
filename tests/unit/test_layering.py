"""Dependencies run one way: the central database is reached only through ``nanoclaw_app/db/``, and nothing below the
web layer imports it.

Found from the code itself (every call of the ``Database`` methods on a name or attribute called ``db``), so a query
added in a service, a channel or the web layer fails here and goes where the table's other queries are. The session
databases (``inbound.db``/``outbound.db``, reached through ``SessionStore`` with a ``sqlite3.Connection``) are not the
central database and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "nanoclaw_app"
DB_METHODS = {"execute", "executemany", "fetchone", "fetchall", "fetchval", "transaction"}


def _is_database(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "db"
    return isinstance(node, ast.Attribute) and node.attr in ("db", "_db")


def central_db_calls() -> list[str]:
    found = []
    for file in sorted(ROOT.rglob("*.py")):
        if file.relative_to(ROOT).parts[0] == "db":
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in DB_METHODS and _is_database(node.func.value)):
                found.append(f"{file.relative_to(ROOT.parent)}:{node.lineno} {ast.unparse(node.func)}")
    return found


def test_sql_on_the_central_database_lives_in_db() -> None:
    assert central_db_calls() == []


def test_the_check_sees_a_query_written_elsewhere() -> None:
    # The same scan over a module that queries the database itself finds it (the check cannot pass vacuously).
    sample = 'async def names(services):\n    return await services.ctx.db.fetchall("SELECT name FROM agents")\n'
    tree = ast.parse(sample)
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in DB_METHODS and _is_database(node.func.value)]
    assert len(calls) == 1


BELOW_THE_WEB = ("core", "services", "gateway", "channels", "secrets", "runtime", "sessions", "db")


def web_imports_below_it() -> list[str]:
    found = []
    for layer in BELOW_THE_WEB:
        for file in sorted((ROOT / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                         else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
                found += [f"{file.relative_to(ROOT.parent)}:{node.lineno} {name}" for name in names
                          if name == "nanoclaw_app.web" or name.startswith("nanoclaw_app.web.")]
    return found


def test_nothing_below_the_web_layer_imports_it() -> None:
    assert web_imports_below_it() == []
