"""The Linux packages made from the frozen binary by installers/linux/package.py.

- The ``.deb`` holds the program, its launcher, a valid menu entry and icons, and depends on what the program loads
  from the system; apt installs it with Podman and WebKitGTK into a clean Debian root, where a normal user runs it.
- An upgrade over an older release keeps that user's settings, secrets, chats, agents and WhatsApp link, and the new
  version applies the migration the old one did not have.
- Removing (and purging) it keeps everyone's data; installing it again picks it up.
- The portable tarball installs for one user, without root, and uninstalls leaving the data.

The clean root is a Podman container of the local Debian base image (tests/frozen/debian_root.py); the user's home is a
host folder, so the test compares the user's files from outside. The older release is the same binary packaged with a
lower version, and its database is put back one migration (``forget_newest_migration``) so the upgrade has one to
apply: the newest release's own migration, exactly as a user upgrading from the release before would meet it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from PIL import Image

from nanoclaw_app.db.migrate import discover
from tests.fakes.openai_server import FakeOpenAI
from tests.frozen.debian_root import DebianRoot

pytestmark = [pytest.mark.frozen, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "installers" / "linux" / "package.py"
USER = "alice"
PASSPHRASE = "correct horse battery staple"
API_KEY = "sk-upgrade-test-0123456789"
NOTE = "Remember: the spare key is under the blue flower pot."
WAIT = 90.0


@dataclass(frozen=True)
class Packages:
    """The packages built for this module from the session's frozen binary."""

    folder: Path
    version: str
    new: Path
    old: Path
    tarball: Path

    @property
    def old_version(self) -> str:
        return f"{self.version}~older"


@pytest.fixture(scope="module")
def packages(binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Packages:
    out = tmp_path_factory.mktemp("packages")

    def build(*args: str) -> Path:
        done = subprocess.run([sys.executable, str(PACKAGE), *args, "--out", str(out)], capture_output=True,
                              text=True, timeout=300, check=False, cwd=REPO)
        assert done.returncode == 0, done.stderr
        return Path(done.stdout.strip())

    program = binary.parent / "nanoclaw-app"  # build.spec's folder form of the same program, what packages ship
    assert (program / "nanoclaw").is_file(), "build.spec did not make dist/nanoclaw-app"
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True,
                             timeout=120).stdout.split()[1]
    new = build("deb", str(program), "--version", version)
    old = build("deb", str(program), "--version", f"{version}~older", "--compression", "none")  # quicker to make
    return Packages(out, version, new, old, build("tarball", str(program), "--version", version))


def deb_field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def validate_desktop_entry(path: Path) -> None:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.fail("desktop-file-validate is missing: run scripts/setup_ui_tests.sh (it installs desktop-file-utils)")
    check = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert not check.stdout.strip()  # no warnings either


def test_the_deb_holds_the_program_its_launcher_a_menu_entry_and_icons(packages: Packages, tmp_path: Path) -> None:
    assert re.fullmatch(rf"nanoclaw_{re.escape(packages.version)}_[a-z0-9]+\.deb", packages.new.name)
    depends = [part.strip() for part in deb_field(packages.new, "Depends").split(",")]
    for needed in ("podman", "uidmap", "slirp4netns | passt", "gir1.2-webkit2-4.1", "gir1.2-gtk-3.0",
                   "libgirepository-1.0-1"):
        assert needed in depends, depends
    assert deb_field(packages.new, "Version") == packages.version

    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-x", str(packages.new), str(tree)], check=True)
    program = tree / "usr" / "lib" / "nanoclaw" / "nanoclaw"
    assert (tree / "usr" / "lib" / "nanoclaw" / "_internal").is_dir()  # the program's folder, unpacked once for all
    assert program.is_file()
    assert os.access(program, os.X_OK)
    launcher = tree / "usr" / "bin" / "nanoclaw"
    assert launcher.is_symlink()
    assert launcher.resolve() == program.resolve()
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        with Image.open(tree / f"usr/share/icons/hicolor/{size}x{size}/apps/nanoclaw.png") as image:
            assert image.size == (size, size)
    assert "<svg" in (tree / "usr/share/icons/hicolor/scalable/apps/nanoclaw.svg").read_text()
    assert "purge" in (tree / "usr/share/doc/nanoclaw/README.Debian").read_text()

    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(packages.new), str(control)], check=True)
    for script in ("postinst", "prerm", "postrm"):
        assert subprocess.run(["sh", "-n", str(control / script)], check=False).returncode == 0, script
    entry = tree / "usr/share/applications/nanoclaw.desktop"
    assert "Exec=nanoclaw\n" in entry.read_text()
    validate_desktop_entry(entry)


# ---------------------------------------------------------------------------------------------------- in a Debian root


@pytest.fixture(scope="module")
def debian(packages: Packages, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DebianRoot]:
    """A clean Debian root with apt's lists up to date and a normal user, ``alice``."""
    homes = tmp_path_factory.mktemp("homes")
    root = DebianRoot(packages.folder, homes)
    root.start()
    try:
        root.run(["apt-get", "update", "-q"])
        root.add_user(USER)
        yield root
    finally:
        root.stop()


def installed_version(debian: DebianRoot) -> str | None:
    done = debian.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Version}", "nanoclaw"], check=False)
    status, _, version = done.stdout.partition(" ")
    return version.strip() if status.strip() == "ii" else None


def data_dir(debian: DebianRoot) -> Path:
    return debian.homes / USER / ".local" / "share" / "nanoclaw"


def config_dir(debian: DebianRoot) -> Path:
    return debian.homes / USER / ".config" / "nanoclaw"


def as_user(debian: DebianRoot, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return debian.run(["nanoclaw", *args], user=USER, env={"NANOCLAW_SECRETS_PASSPHRASE": PASSPHRASE}, check=check)


@pytest.mark.podman  # the clean Debian root is a Podman container
def test_apt_installs_it_with_podman_and_the_window_libraries_and_a_user_runs_it(
    debian: DebianRoot, packages: Packages
) -> None:
    debian.apt_install(f"/debs/{packages.old.name}")
    assert installed_version(debian) == packages.old_version
    listed = debian.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", "podman", "uidmap", "passt",
                         "slirp4netns", "gir1.2-webkit2-4.1", "gir1.2-gtk-3.0", "libgirepository-1.0-1"],
                        check=False).stdout
    status = dict(line.split(" ", 1) for line in listed.splitlines() if " " in line)
    for package in ("podman", "uidmap", "gir1.2-webkit2-4.1", "gir1.2-gtk-3.0", "libgirepository-1.0-1"):
        assert status.get(package, "").strip() == "ii", listed
    assert "ii" in (status.get("passt", "") + status.get("slirp4netns", "")), listed
    for path in ("/usr/lib/nanoclaw/nanoclaw", "/usr/share/applications/nanoclaw.desktop",
                 "/usr/share/icons/hicolor/256x256/apps/nanoclaw.png"):
        debian.run(["test", "-f", path])
    # Installing started nothing and wrote nothing in anyone's home.
    running = debian.sh("grep -l nanoclaw /proc/[0-9]*/comm 2>/dev/null || true").stdout.strip()
    assert running == ""
    assert not (debian.homes / USER / ".local" / "share" / "nanoclaw").exists()

    assert debian.run(["sh", "-c", "command -v nanoclaw"], user=USER).stdout.strip() == "/usr/bin/nanoclaw"
    assert as_user(debian, "--version").stdout == f"nanoclaw {packages.version}\n"
    doctor = as_user(debian, "doctor", check=False).stdout
    assert "[ok  ] whatsapp: neonize" in doctor, doctor
    assert re.search(r"\[ok  \] python: 3\.\d+", doctor), doctor


# ---------------------------------------------------------------------------------------------------- upgrade


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_log(debian: DebianRoot) -> str:
    logs = sorted((data_dir(debian) / "logs").glob("*.log"))
    return logs[-1].read_text(errors="replace")[-4000:] if logs else "(no log)"


@asynccontextmanager
async def running_app(debian: DebianRoot) -> AsyncIterator[httpx.AsyncClient]:
    """``nanoclaw serve`` as the user, and a client signed in to it with ``nanoclaw open``'s link; stopped after."""
    port = free_port()
    debian.run(["nanoclaw", "serve", "--port", str(port)], user=USER,
               env={"NANOCLAW_SECRETS_PASSPHRASE": PASSPHRASE}, detach=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + WAIT
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while True:
            try:
                if (await client.get("/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"nanoclaw serve did not answer within {WAIT:.0f} s:\n{app_log(debian)}")
            await asyncio.sleep(0.3)
        try:
            link = as_user(debian, "open").stdout.strip().splitlines()[0]
            signed = await client.get(link, follow_redirects=False)
            assert signed.status_code in (302, 303), signed.text
            client.headers["x-csrftoken"] = client.cookies["nanoclaw_csrf"]
            yield client
        finally:
            stop_app(debian)


def stop_app(debian: DebianRoot) -> None:
    """SIGTERM to the app (its pid is in its run file), then wait until it has exited and forgotten the file."""
    record = json.loads((data_dir(debian) / "run" / "web.json").read_text())
    pid = int(record["pid"])
    debian.run(["kill", "-TERM", str(pid)])
    deadline = time.monotonic() + WAIT
    # `sleep` is the root's first process and reaps nothing: an exited app stays a zombie, which counts as gone.
    gone = f"! test -e /proc/{pid} || grep -q '^State:.*Z' /proc/{pid}/status"
    while debian.sh(gone, check=False).returncode != 0 or (data_dir(debian) / "run" / "web.json").exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the app did not stop within {WAIT:.0f} s of SIGTERM:\n{app_log(debian)}")
        time.sleep(0.3)


def schema_objects(migrations: list[Path]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each object's SQL, and each table's columns in order, after these migrations."""
    conn = sqlite3.connect(":memory:")
    try:
        for migration in migrations:
            conn.executescript(migration.read_text(encoding="utf-8"))
        rows = conn.execute("SELECT name, type, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
        columns = {name: [c[1] for c in conn.execute(f'PRAGMA table_info("{name}")')]
                   for name, kind, _ in rows if kind == "table"}
    finally:
        conn.close()
    return {name: sql or "" for name, _, sql in rows}, columns


def forget_newest_migration(db: Path) -> str:
    """Put a database back to how the release before the newest migration left it; returns that migration's name.

    The newest migration's objects are found by building the schema with and without it. Columns it added to an
    existing table are dropped; any other change to an existing table cannot be undone this way, and the test says so
    instead of guessing.
    """
    migrations = discover()
    newest = migrations[-1]
    before, columns_before = schema_objects([m.path for m in migrations[:-1]])
    after, columns_after = schema_objects([m.path for m in migrations])
    changed = sorted(name for name in before if after.get(name) != before[name])
    added_columns = {name: columns_after[name][len(columns_before[name]):] for name in changed
                     if name in columns_before and columns_after.get(name, [])[:len(columns_before[name])]
                     == columns_before[name]}
    if set(changed) - set(added_columns):
        pytest.fail(f"{newest.path.name} changes {changed}: teach forget_newest_migration to undo it")
    added = [name for name in after if name not in before]
    conn = sqlite3.connect(db)
    try:
        for table, columns in added_columns.items():
            for column in columns:
                conn.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
        kinds = dict(conn.execute("SELECT name, type FROM sqlite_master").fetchall())
        order = {"trigger": 0, "view": 1, "index": 2, "table": 3}
        for name in sorted(added, key=lambda n: order.get(kinds.get(n, "table"), 3)):
            if name in kinds:
                conn.execute(f'DROP {kinds[name].upper()} IF EXISTS "{name}"')
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (newest.version,))
        conn.commit()
    finally:
        conn.close()
    return f"{newest.version:04d}_{newest.name}"


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under the folders, by path, with its SHA-256."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


class KeyedOpenAI(FakeOpenAI):
    """The fake server, also noting the key each model listing came with (what the wizard's check calls)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.keys.append(request.headers.get("authorization", ""))
        return await super()._models(request)


def write_whatsapp_link(path: Path, owner: Path) -> None:
    """A stand-in for neonize's device database: a SQLite file with the linked device's row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY, registration_id INTEGER)")
    conn.execute("INSERT INTO whatsmeow_device VALUES ('491701234567.0:7@s.whatsapp.net', 4242)")
    conn.commit()
    conn.close()
    stat = owner.stat()
    for item in (path.parent, path):
        os.chown(item, stat.st_uid, stat.st_gid)


@pytest.mark.podman  # the clean Debian root is a Podman container
async def test_an_upgrade_keeps_settings_secrets_chats_and_the_whatsapp_link_and_migrates(
    debian: DebianRoot, packages: Packages
) -> None:
    if installed_version(debian) != packages.old_version:
        debian.apt_install(f"/debs/{packages.old.name}")
    data, config = data_dir(debian), config_dir(debian)
    fake = KeyedOpenAI()
    await fake.start()
    try:
        # The older release: the user sets it up through the wizard and chats.
        as_user(debian, "settings", "set", "timezone", "Europe/Paris")
        async with running_app(debian) as client:
            model = await client.post("/api/setup/model", json={
                "kind": "openai_compatible", "api_key": API_KEY, "base_url": fake.v1_url, "model": "fake-model"})
            assert model.status_code == 200, model.text
            assert fake.keys == [f"Bearer {API_KEY}"]
            agent = await client.post("/api/setup/agent", json={"name": "Ada"})
            assert agent.status_code == 200, agent.text
            sent = await client.post("/api/chat/messages", json={"text": NOTE})
            assert sent.status_code == 201, sent.text
        write_whatsapp_link(data / "channels" / "whatsapp" / "device.db", debian.homes / USER)
        before = snapshot(data, config)
        assert any(name.endswith("secrets.enc") for name in before)  # the key went to the encrypted store
        migration = forget_newest_migration(data / "nanoclaw.db")

        upgrade = debian.apt_install(f"/debs/{packages.new.name}")
        assert f"over ({packages.old_version})" in upgrade.stdout, upgrade.stdout
        assert "Everyone's data is kept" in upgrade.stdout
        assert installed_version(debian) == packages.version
        assert "1 migration(s) pending" in as_user(debian, "doctor", check=False).stdout

        # The newer release finds it all.
        async with running_app(debian) as client:
            chat = await client.get("/api/chat/messages")
            assert chat.status_code == 200, chat.text
            assert NOTE in chat.text
            again = await client.post("/api/setup/model", json={  # an empty key: use the saved one
                "kind": "openai_compatible", "api_key": "", "base_url": fake.v1_url, "model": "fake-model"})
            assert again.status_code == 200, again.text
            assert fake.keys[-1] == f"Bearer {API_KEY}"  # the secret survived the upgrade and still decrypts
            shown = await client.get("/api/settings")
            assert "Europe/Paris" in shown.text
    finally:
        await fake.stop()

    after = snapshot(data, config)
    lost = sorted(set(before) - set(after))
    assert not lost, lost
    for name in before:
        if not re.search(r"\.db(-journal|-wal|-shm)?$|/logs/|/run/", name):  # databases change: checked below
            assert after[name] == before[name], f"{name} changed in the upgrade"
    assert after[str(data / "channels" / "whatsapp" / "device.db")] == before[str(data / "channels/whatsapp/device.db")]
    conn = sqlite3.connect(data / "nanoclaw.db")
    try:
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    finally:
        conn.close()
    assert applied == {m.version for m in discover()}, f"{migration} was not applied again"
    assert sessions >= 1
    agents = json.loads(as_user(debian, "agents", "list", "--json").stdout)
    assert [a["name"] for a in agents] == ["Ada"]


# ---------------------------------------------------------------------------------------------------- removal


@pytest.mark.podman  # the clean Debian root is a Podman container
def test_removing_and_purging_keep_everyones_data_and_a_reinstall_picks_it_up(
    debian: DebianRoot, packages: Packages
) -> None:
    if installed_version(debian) is None:
        debian.apt_install(f"/debs/{packages.new.name}")
    as_user(debian, "agents", "create", "Bo")
    kept = snapshot(data_dir(debian), config_dir(debian))
    assert kept

    removed = debian.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "remove", "-y", "-q", "nanoclaw"])
    assert "Everyone's NanoClaw data stays in their home folder" in removed.stdout
    debian.run(["sh", "-c", "! test -e /usr/bin/nanoclaw && ! test -e /usr/lib/nanoclaw/nanoclaw"])
    assert snapshot(data_dir(debian), config_dir(debian)) == kept

    purged = debian.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge", "-y", "-q", "nanoclaw"])
    assert "NanoClaw purged" in purged.stdout
    assert "rm -rf ~/.local/share/nanoclaw ~/.config/nanoclaw" in purged.stdout  # how each person deletes theirs
    assert installed_version(debian) is None
    assert snapshot(data_dir(debian), config_dir(debian)) == kept

    debian.apt_install(f"/debs/{packages.new.name}")
    names = [a["name"] for a in json.loads(as_user(debian, "agents", "list", "--json").stdout)]
    assert "Bo" in names


# ---------------------------------------------------------------------------------------------------- portable


def test_the_portable_tarball_installs_for_one_user_and_uninstalls_keeping_the_data(
    packages: Packages, tmp_path: Path
) -> None:
    with tarfile.open(packages.tarball) as tar:
        members = tar.getmembers()
        assert all(m.uid == 0 and m.gid == 0 for m in members)
        tar.extractall(tmp_path / "unpacked", filter="tar")
    (folder,) = (tmp_path / "unpacked").iterdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    done = subprocess.run([str(folder / "install.sh")], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    command = home / ".local" / "bin" / "nanoclaw"
    assert "is not on your PATH" in done.stdout
    version = subprocess.run([str(command), "--version"], capture_output=True, text=True, env=env, check=True)
    assert version.stdout == f"nanoclaw {packages.version}\n"
    entry = home / ".local" / "share" / "applications" / "nanoclaw.desktop"
    assert f'Exec="{command}"' in entry.read_text()
    validate_desktop_entry(entry)
    assert (home / ".local/share/icons/hicolor/128x128/apps/nanoclaw.png").is_file()
    data = home / ".local" / "share" / "nanoclaw" / "nanoclaw.db"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"the user's chats")

    gone = subprocess.run([str(folder / "install.sh"), "--uninstall"], capture_output=True, text=True, env=env,
                          check=False)
    assert gone.returncode == 0, gone.stderr
    assert not command.exists()
    assert not command.is_symlink()
    assert not entry.exists()
    assert not (home / ".local/share/icons/hicolor/128x128/apps/nanoclaw.png").exists()
    assert data.read_bytes() == b"the user's chats"
    assert "Your data is kept" in gone.stdout
