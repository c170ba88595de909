"""Linux packages from the frozen binary: a ``.deb`` (apt brings Podman and WebKitGTK with it) and a portable tarball.

Run from the repository, after ``pyinstaller build.spec`` made ``dist/nanoclaw-app/`` (the program as a folder: it
starts without unpacking itself) and ``dist/nanoclaw`` (the same program as one file)::

    .venv/bin/python installers/linux/package.py deb dist/nanoclaw-app --out dist
    .venv/bin/python installers/linux/package.py tarball dist/nanoclaw-app --out dist

Either form can be packaged; the folder is what the release ships. The program lands in ``lib/nanoclaw/``
(``/usr/lib/nanoclaw/`` in the .deb), its executable at ``lib/nanoclaw/nanoclaw``.

The version comes from the binary itself (``nanoclaw --version``), so a package can never claim another build's
number; ``--version`` overrides it (the upgrade test packages one binary as an older release). Needs ``dpkg-deb``
for the ``.deb`` (Debian and Ubuntu have it; elsewhere install ``dpkg``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import icon

HERE = Path(__file__).resolve().parent
NAME = "nanoclaw"
# The release sets the real contact (--maintainer); the default only has to be well-formed for dpkg.
MAINTAINER = "NanoClaw maintainers <maintainers@nanoclaw.invalid>"
# What the program loads from the system, and the engine its agents run in (rootless: uidmap's newuidmap/newgidmap
# and a user-mode network). The window is pywebview on GTK: gi (bundled) opens libgirepository and the GTK, WebKit2
# and Soup typelibs (which bring the C++ runtime the bundle leaves to the system); WhatsApp's media go through
# libmagic (bundled), which reads its database from libmagic-mgc.
DEPENDS = [
    "podman", "uidmap", "slirp4netns | passt",  # Podman 4 (Debian 12) networks rootless with slirp4netns
    "libgirepository-1.0-1", "gir1.2-gtk-3.0", "gir1.2-webkit2-4.1", "libmagic-mgc",
]
# The tray icon (AppIndicator), a keyring that keeps API keys (Secret Service), a D-Bus session for rootless
# Podman's cgroups and for the two before, and containers-storage, whose storage.conf makes rootless Podman use
# overlay (without it Debian 12's Podman falls back to vfs and copies the whole image for every container: 8.5 s
# instead of 1 s per start here). NanoClaw says in plain words what is missing when one is not there.
RECOMMENDS = ["gir1.2-ayatanaappindicator3-0.1", "gnome-keyring", "dbus-user-session", "xdg-utils",
              "containers-storage"]
SUGGESTS = ["ffmpeg"]  # WhatsApp voice notes, videos and stickers
DESCRIPTION = """\
personal AI assistant with sandboxed agents
 NanoClaw answers you on WhatsApp, Telegram or in its own window. Every agent
 session runs in its own rootless Podman container, and API keys stay in your
 keyring: they never enter a container.
 .
 Start it from the applications menu; on a headless server, run
 `nanoclaw service install` as the person who owns the assistant."""


def executable(program: Path) -> Path:
    """The program's executable: the file itself, or ``nanoclaw`` inside the program's folder."""
    return program / NAME if program.is_dir() else program


def binary_version(program: Path) -> str:
    """The version the program reports (``nanoclaw 0.1.0`` -> ``0.1.0``)."""
    out = subprocess.run(  # noqa: S603 - the program the builder named
        [str(executable(program)), "--version"], capture_output=True, text=True, timeout=120, check=True
    )
    match = re.fullmatch(r"nanoclaw (\S+)\s*", out.stdout)
    if match is None:
        raise SystemExit(f"{program} --version printed {out.stdout!r}, not 'nanoclaw VERSION'")
    return match.group(1)


def debian_arch() -> str:
    """The Debian architecture of this machine (the binary is built for the machine it was built on)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def glibc_floor() -> str:
    """``libc6 (>= X)`` for the C library the binary was linked against (the build machine's)."""
    found = os.confstr("CS_GNU_LIBC_VERSION") or ""  # "glibc 2.36"
    version = found.split()[-1] if found.startswith("glibc") else ""
    return f"libc6 (>= {version})" if version else "libc6"


def _copy(src: Path, dest: Path, mode: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    dest.chmod(mode)


def stage_shared(root: Path, program: Path) -> None:
    """The program in ``root/lib/nanoclaw/``, the menu entry and the icons under ``root/share``."""
    where = root / "lib" / NAME
    if program.is_dir():
        shutil.copytree(program, where, symlinks=True)
    else:
        _copy(program, where / NAME, 0o755)
    _copy(HERE / "nanoclaw.desktop", root / "share" / "applications" / "nanoclaw.desktop", 0o644)
    icon.write_hicolor(root / "share" / "icons")


def _fix_modes(root: Path) -> None:
    """Folders 0755 and files 0644 unless executable, whatever the builder's umask."""
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            (Path(folder) / name).chmod(0o755)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)


def build_deb(
    program: Path, out: Path, version: str, *, compression: str = "gzip", maintainer: str = MAINTAINER
) -> Path:
    """``out/nanoclaw_<version>_<arch>.deb``: the program in /usr/lib/nanoclaw, /usr/bin/nanoclaw, menu entry, icons."""
    arch = debian_arch()
    deb = out / f"{NAME}_{version}_{arch}.deb"
    with tempfile.TemporaryDirectory(prefix="nanoclaw-deb-") as tmp:
        root = Path(tmp) / "root"
        usr = root / "usr"
        stage_shared(usr, program)
        (usr / "bin").mkdir(parents=True)
        (usr / "bin" / NAME).symlink_to(Path("..") / "lib" / NAME / NAME)
        doc = usr / "share" / "doc" / NAME
        _copy(HERE / "debian" / "copyright", doc / "copyright", 0o644)
        _copy(HERE / "debian" / "README.Debian", doc / "README.Debian", 0o644)
        control_dir = root / "DEBIAN"
        control_dir.mkdir()
        for script in ("postinst", "prerm", "postrm"):
            _copy(HERE / "debian" / script, control_dir / script, 0o755)
        _fix_modes(root)
        files = sorted(p for p in usr.rglob("*") if p.is_file() and not p.is_symlink())
        size_kib = sum((p.stat().st_size + 1023) // 1024 for p in files) + 1
        (control_dir / "md5sums").write_text(
            "".join(f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(root)}\n" for p in files),  # noqa: S324 - dpkg's format
            encoding="utf-8",
        )
        control = {
            "Package": NAME,
            "Version": version,
            "Architecture": arch,
            "Maintainer": maintainer,
            "Installed-Size": str(size_kib),
            "Depends": ", ".join([glibc_floor(), *DEPENDS]),
            "Recommends": ", ".join(RECOMMENDS),
            "Suggests": ", ".join(SUGGESTS),
            "Section": "net",
            "Priority": "optional",
            "Description": DESCRIPTION,
        }
        (control_dir / "control").write_text("".join(f"{k}: {v}\n" for k, v in control.items()), encoding="utf-8")
        _fix_modes(control_dir)
        out.mkdir(parents=True, exist_ok=True)
        # gzip at level 6: the same size as level 9 within 0.5 %, in half the time (the program's data is mostly
        # compressed already); every dpkg reads it.
        level = ["-z6"] if compression == "gzip" else []
        command = ["dpkg-deb", "--root-owner-group", f"-Z{compression}", *level, "--build", str(root), str(deb)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - dpkg-deb from PATH, fixed arguments
    return deb


def build_tarball(program: Path, out: Path, version: str) -> Path:
    """``out/nanoclaw-<version>-linux-<arch>.tar.gz``: one folder with the launcher, install.sh, the program, icons."""
    folder = f"{NAME}-{version}-linux-{platform.machine().lower()}"
    archive = out / f"{folder}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="nanoclaw-tar-") as tmp:
        root = Path(tmp) / folder
        stage_shared(root, program)
        for name, mode in (("nanoclaw", 0o755), ("install.sh", 0o755), ("README.txt", 0o644)):
            _copy(HERE / "portable" / name, root / name, mode)
        _fix_modes(root)
        out.mkdir(parents=True, exist_ok=True)

        def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            return info

        with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
            tar.add(root, arcname=folder, filter=owned_by_root)
    return archive


def main(argv: list[str] | None = None) -> int:
    """Build the package named on the command line; prints its path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["deb", "tarball"])
    parser.add_argument("program", type=Path, help="the frozen program: dist/nanoclaw-app (a folder) or dist/nanoclaw")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="folder for the package (default: dist)")
    parser.add_argument("--version", help="package version (default: what the program reports)")
    # xz saves a tenth of the size but takes four times as long as gzip; gzip is the default.
    parser.add_argument("--compression", default="gzip", choices=["gzip", "xz", "zstd", "none"],
                        help=".deb payload compression (default: gzip)")
    parser.add_argument("--maintainer", default=MAINTAINER, help="the .deb's Maintainer field")
    args = parser.parse_args(argv)
    program = args.program.resolve()
    if not executable(program).is_file():
        parser.error(f"{program} is not a NanoClaw program: build it first with `.venv/bin/pyinstaller build.spec`")
    version = args.version or binary_version(program)
    if args.kind == "deb":
        built = build_deb(program, args.out.resolve(), version, compression=args.compression,
                          maintainer=args.maintainer)
    else:
        built = build_tarball(program, args.out.resolve(), version)
    print(built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
