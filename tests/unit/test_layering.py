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


BELOW_THE_WEB = ("core", "services", "gateway", "egress", "channels", "secrets", "runtime", "sessions", "db")


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


def _imports(file: Path) -> list[tuple[int, str]]:
    """Every module a file imports (``from x import y`` counts as ``x`` and ``x.y``), with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def imports_from(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    """Imports in ``nanoclaw_app/<layer>`` of a module in one of the ``forbidden`` packages."""
    found = []
    for file in sorted((ROOT / layer).rglob("*.py")):
        for line, name in _imports(file):
            if any(name == f"nanoclaw_app.{f}" or name.startswith(f"nanoclaw_app.{f}.") for f in forbidden):
                found.append(f"{file.relative_to(ROOT.parent)}:{line} {name}")
    return found


def test_core_knows_no_channel_no_service_and_no_web() -> None:
    assert imports_from("core", ("channels", "services", "web")) == []


def test_services_know_no_web() -> None:
    assert imports_from("services", ("web",)) == []


def test_the_egress_proxy_knows_no_channel_no_service_and_no_web_and_core_only_its_pure_rules() -> None:
    assert imports_from("egress", ("channels", "services", "web")) == []
    reaching_in = [line for line in imports_from("core", ("egress",)) if not line.endswith("nanoclaw_app.egress.policy")
                   and ".egress.policy." not in line]
    assert reaching_in == []


CHANNEL_FOLDERS = sorted(p for p in (ROOT / "channels").iterdir() if p.is_dir() and p.name not in ("__pycache__",
                                                                                                       "webchat"))
"""The channels the user sets up (the in-app chat is part of the app and always on)."""


def test_every_channel_folder_has_its_manifest_setup_and_page_module_and_is_listed() -> None:
    from nanoclaw_app.channels import registry

    assert [p.name for p in CHANNEL_FOLDERS] == sorted(m.name for m in registry.CHANNELS)
    for folder in CHANNEL_FOLDERS:
        assert (folder / "manifest.py").is_file(), folder
        assert (folder / "setup.py").is_file(), folder
        manifest = registry.manifest(folder.name)
        assert manifest is not None
        page_module = ROOT.parent / "ui" / manifest.page_module.removeprefix("/")
        assert page_module.is_file(), page_module
        assert (ROOT.parent / "ui" / "strings" / "en" / f"{folder.name}.json").is_file(), folder.name


def test_outside_its_folder_a_channel_is_reached_only_through_the_registry() -> None:
    """Only ``channels/registry.py`` imports a channel folder (its manifest); the rest of the app goes through it."""
    names = {p.name for p in CHANNEL_FOLDERS}
    found = []
    for file in sorted(ROOT.rglob("*.py")):
        relative = file.relative_to(ROOT)
        if relative.parts[0] == "channels" and (relative.parts[1] in names or relative.name == "registry.py"):
            continue
        for line, name in _imports(file):
            parts = name.split(".")
            if len(parts) > 2 and parts[:2] == ["nanoclaw_app", "channels"] and parts[2] in names:
                found.append(f"{relative}:{line} {name}")
    assert found == []


def test_channel_folders_do_not_import_each_other() -> None:
    names = {p.name for p in CHANNEL_FOLDERS}
    found = []
    for folder in CHANNEL_FOLDERS:
        for file in sorted(folder.rglob("*.py")):
            for line, name in _imports(file):
                parts = name.split(".")
                if len(parts) > 2 and parts[:2] == ["nanoclaw_app", "channels"] and parts[2] in names - {folder.name}:
                    found.append(f"{file.relative_to(ROOT)}:{line} {name}")
    assert found == []


def channel_names_in_code(layer: str, names: set[str]) -> list[str]:
    """String constants (not docstrings) in a layer that are a channel's name: a branch on one channel."""
    found = []
    for file in sorted((ROOT / layer).rglob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and node.value.lower() in names):
                found.append(f"{file.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    return found


def test_the_generic_layers_branch_on_no_channel_name() -> None:
    names = {p.name for p in CHANNEL_FOLDERS}
    for layer in ("core", "services", "web"):
        assert channel_names_in_code(layer, names) == [], layer


def import_cycles() -> list[list[str]]:
    """Groups of modules that import each other, directly or round a circle (every import, lazy ones too)."""
    modules = {}
    for file in ROOT.rglob("*.py"):
        name = ".".join(file.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = file
    graph = {name: {target for _, target in _imports(file) if target in modules and target != name}
             for name, file in modules.items()}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        order[node] = low[node] = len(order)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in graph:
        if node not in order:
            visit(node)
    return cycles


def test_no_channel_module_is_part_of_an_import_circle() -> None:
    circles = [c for c in import_cycles() if any(m.startswith("nanoclaw_app.channels.") for m in c)
               or "nanoclaw_app.settings" in c]
    assert circles == []
