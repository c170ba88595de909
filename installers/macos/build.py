"""NanoClaw for macOS: ``NanoClaw.app`` (build.spec's BUNDLE) in a ``.dmg``, signed and notarized with credentials.

Run on a Mac, from the repository, with the app's build environment (``scripts/setup.sh --dev``)::

    .venv/bin/python installers/macos/build.py --out dist           # build, sign, .dmg, notarize
    .venv/bin/python installers/macos/build.py --out dist --dry-run # only print what would run

Signing and notarization are decided by the environment, and each is skipped with a message saying what is missing:

- ``MACOS_SIGN_IDENTITY``: a “Developer ID Application: …” identity in the keychain. Every Mach-O file of the app is
  signed inside-out with the hardened runtime (``--options runtime``) and ``entitlements.plist``, then the app, then
  the ``.dmg``.
- Notarization, either with an App Store Connect API key (``MACOS_NOTARY_KEY`` = path of the ``.p8`` file,
  ``MACOS_NOTARY_KEY_ID``, ``MACOS_NOTARY_ISSUER``) or with an Apple ID (``MACOS_NOTARY_APPLE_ID``,
  ``MACOS_NOTARY_PASSWORD`` = an app-specific password, ``MACOS_NOTARY_TEAM_ID``): ``xcrun notarytool submit --wait``,
  then ``xcrun stapler staple`` so that the ``.dmg`` opens without a network check.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
APP_NAME = "NanoClaw"
ENTITLEMENTS = HERE / "entitlements.plist"
DMG_SETTINGS = HERE / "dmg_settings.py"
NESTED = "<every Mach-O file inside the app, deepest first>"
"""Stands for the app's own files in a planned ``codesign`` (they exist only once PyInstaller has run)."""
MACHO_MAGIC = {b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe",
               b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca"}


@dataclass
class Plan:
    """What a build does: the commands in order, and a message for each step that is skipped."""

    version: str
    app: Path
    dmg: Path
    icns: Path
    sign_identity: str = ""
    notary: list[str] = field(default_factory=list)
    """``notarytool`` authentication arguments; empty when notarization is skipped."""
    skipped: list[str] = field(default_factory=list)

    def commands(self, *, build: Path, pyinstaller: bool = True) -> list[list[str]]:
        """Every command, with the app's files to sign shown as one ``codesign`` placeholder line."""
        out: list[list[str]] = []
        if pyinstaller:
            out.append([sys.executable, "-m", "PyInstaller", str(ROOT / "build.spec"), "--noconfirm",
                        "--distpath", str(self.app.parent), "--workpath", str(build)])
        if self.sign_identity:
            out.append(codesign(self.sign_identity, Path(NESTED)))
            out.append(codesign(self.sign_identity, self.app))
            out.append(["codesign", "--verify", "--deep", "--strict", "--verbose=2", str(self.app)])
        out.append([sys.executable, "-m", "dmgbuild", "-s", str(DMG_SETTINGS), "-D", f"app={self.app}",
                    "-D", f"icon={self.icns}", APP_NAME, str(self.dmg)])
        if self.sign_identity:
            out.append(["codesign", "--force", "--timestamp", "--sign", self.sign_identity, str(self.dmg)])
        if self.notary:
            out.append(["xcrun", "notarytool", "submit", str(self.dmg), "--wait", *self.notary])
            out.append(["xcrun", "stapler", "staple", str(self.dmg)])
            out.append(["xcrun", "stapler", "validate", str(self.dmg)])
        return out


def version() -> str:
    """The app's version, read from its package (the same number the binary reports)."""
    text = (ROOT / "nanoclaw_app" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'__version__ = "([^"]+)"', text)
    if found is None:
        raise SystemExit("nanoclaw_app/__init__.py has no __version__")
    return found.group(1)


def plan(out: Path, build: Path, env: Mapping[str, str]) -> Plan:
    """Decide what to build and which of signing and notarization can run with this environment."""
    ver = version()
    result = Plan(version=ver, app=out / f"{APP_NAME}.app", dmg=out / f"{APP_NAME}-{ver}.dmg",
                  icns=build / f"{APP_NAME}.icns")
    result.sign_identity = env.get("MACOS_SIGN_IDENTITY", "").strip()
    if not result.sign_identity:
        result.skipped.append("Code signing skipped: MACOS_SIGN_IDENTITY is not set. The app will run only after "
                              "the user allows it in System Settings → Privacy & Security.")
    key, key_id, issuer = (env.get(n, "").strip() for n in ("MACOS_NOTARY_KEY", "MACOS_NOTARY_KEY_ID",
                                                             "MACOS_NOTARY_ISSUER"))
    apple_id, password, team = (env.get(n, "").strip() for n in ("MACOS_NOTARY_APPLE_ID", "MACOS_NOTARY_PASSWORD",
                                                                  "MACOS_NOTARY_TEAM_ID"))
    if key and key_id and issuer:
        auth = ["--key", key, "--key-id", key_id, "--issuer", issuer]
    elif apple_id and password and team:
        auth = ["--apple-id", apple_id, "--password", password, "--team-id", team]
    else:
        auth = []
        result.skipped.append("Notarization skipped: set MACOS_NOTARY_KEY, MACOS_NOTARY_KEY_ID and "
                              "MACOS_NOTARY_ISSUER (an App Store Connect API key), or MACOS_NOTARY_APPLE_ID, "
                              "MACOS_NOTARY_PASSWORD and MACOS_NOTARY_TEAM_ID.")
    if auth and not result.sign_identity:
        result.skipped.append("Notarization skipped: Apple notarizes only signed apps (set MACOS_SIGN_IDENTITY).")
        auth = []
    result.notary = auth
    return result


def codesign(identity: str, path: Path) -> list[str]:
    """Sign one file or bundle with the hardened runtime, a secure timestamp and the app's entitlements."""
    return ["codesign", "--force", "--options", "runtime", "--timestamp", "--entitlements", str(ENTITLEMENTS),
            "--sign", identity, str(path)]


def signing_order(app: Path) -> list[Path]:
    """The Mach-O files inside the app (libraries, extension modules, the program), deepest first.

    Apple wants nested code signed before what contains it; ``codesign --deep`` is not meant for signing.
    """
    found = []
    for path in app.rglob("*"):
        if path.is_file() and not path.is_symlink() and _is_macho(path):
            found.append(path)
    return sorted(found, key=lambda p: (-len(p.relative_to(app).parts), str(p)))


def _is_macho(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(4) in MACHO_MAGIC


def write_icns(target: Path) -> None:
    """The app icon (the orange “N” tile of installers/linux/icon.py) as an ``.icns``, drawn with Pillow."""
    sys.path.insert(0, str(ROOT / "installers" / "linux"))
    import icon
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(icon.png(1024))).save(target, format="ICNS")


def shown(argv: list[str]) -> str:
    """A command as the log shows it: notarytool's password and key file are not printed."""
    return " ".join("***" if i and argv[i - 1] in ("--password", "--key") else a for i, a in enumerate(argv))


def run(argv: list[str], env: Mapping[str, str] | None = None) -> None:
    """Run one step, showing it first."""
    print("+", shown(argv), flush=True)
    subprocess.run(argv, check=True, env=None if env is None else dict(env))  # noqa: S603 - the build's own steps


def main() -> int:
    """Build the app and the disk image (or print the plan)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where NanoClaw.app and the .dmg go")
    parser.add_argument("--build", type=Path, default=ROOT / "build" / "macos", help="PyInstaller's work folder")
    parser.add_argument("--skip-pyinstaller", action="store_true", help="use the NanoClaw.app already in --out")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the commands, run nothing")
    args = parser.parse_args()
    the_plan = plan(args.out.resolve(), args.build.resolve(), os.environ)
    for message in the_plan.skipped:
        print(f"NOTE: {message}", flush=True)
    commands = the_plan.commands(build=args.build.resolve(), pyinstaller=not args.skip_pyinstaller)
    if args.dry_run:
        for argv in commands:
            print("+", shown(argv))
        return 0
    if sys.platform != "darwin":
        print("The macOS app can only be built on macOS (PyInstaller, codesign, hdiutil).", file=sys.stderr)
        return 2
    write_icns(the_plan.icns)
    the_plan.dmg.unlink(missing_ok=True)
    if not args.skip_pyinstaller:
        shutil.rmtree(the_plan.app, ignore_errors=True)
    for argv in commands:
        if argv[-1] == NESTED:
            for path in signing_order(the_plan.app):
                run([*argv[:-1], str(path)])
        else:
            run(argv, env={**os.environ, "NANOCLAW_ICNS": str(the_plan.icns)})
    print(f"Built {the_plan.dmg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
