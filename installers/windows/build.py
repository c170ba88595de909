r"""NanoClaw for Windows: ``NanoClaw-<version>-setup.exe``, a per-user Inno Setup installer of the frozen app.

Run on Windows, from the repository, with the app's build environment and Inno Setup 6 installed::

    .venv\Scripts\python installers\windows\build.py --out dist
    .venv\Scripts\python installers\windows\build.py --out dist --dry-run   # only print what would run

Steps: the icon (``nanoclaw.ico``, drawn from installers/linux/icon.py), PyInstaller (build.spec's windowed
``nanoclaw-window.exe``), then ``iscc`` on ``nanoclaw.iss`` with the version, the program and the icon passed in.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCRIPT = HERE / "nanoclaw.iss"
ICON_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]
ISCC_PLACES = (r"C:\Program Files (x86)\Inno Setup 6\ISCC.exe", r"C:\Program Files\Inno Setup 6\ISCC.exe")


def version() -> str:
    """The app's version, read from its package (the same number the binary reports)."""
    found = re.search(r'__version__ = "([^"]+)"', (ROOT / "nanoclaw_app" / "__init__.py").read_text(encoding="utf-8"))
    if found is None:
        raise SystemExit("nanoclaw_app/__init__.py has no __version__")
    return found.group(1)


def find_iscc(env: Mapping[str, str]) -> str:
    """Inno Setup's compiler: ``ISCC`` in the environment, on PATH, or where its installer puts it."""
    named = env.get("ISCC") or shutil.which("iscc") or next((p for p in ISCC_PLACES if Path(p).exists()), None)
    return named or "ISCC.exe"


def commands(out: Path, build: Path, env: Mapping[str, str], *, pyinstaller: bool = True) -> list[list[str]]:
    """The build's commands in order."""
    ver = version()
    icon = build / "nanoclaw.ico"
    steps = []
    if pyinstaller:
        steps.append([sys.executable, "-m", "PyInstaller", str(ROOT / "build.spec"), "--noconfirm", "--distpath",
                      str(out), "--workpath", str(build)])
    steps.append([find_iscc(env), f"/DAppVersion={ver}", f"/DSourceExe={out / 'nanoclaw-window.exe'}",
                  f"/DIconFile={icon}", f"/DOutputDir={out}", str(SCRIPT)])
    return steps


def write_ico(target: Path) -> None:
    """The app icon (the orange “N” tile of installers/linux/icon.py) as a Windows ``.ico``, drawn with Pillow."""
    sys.path.insert(0, str(ROOT / "installers" / "linux"))
    import icon
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(icon.png(256))).save(target, format="ICO", sizes=ICON_SIZES)


def main() -> int:
    """Build the installer (or print the plan)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the setup program goes")
    parser.add_argument("--build", type=Path, default=ROOT / "build" / "windows", help="PyInstaller's work folder")
    parser.add_argument("--skip-pyinstaller", action="store_true", help="use the nanoclaw-window.exe in --out")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    out, build = args.out.resolve(), args.build.resolve()
    steps = commands(out, build, os.environ, pyinstaller=not args.skip_pyinstaller)
    if args.dry_run:
        for argv in steps:
            print("+", " ".join(argv))
        return 0
    write_ico(build / "nanoclaw.ico")
    for argv in steps:
        print("+", " ".join(argv), flush=True)
        subprocess.run(argv, check=True, env={**os.environ, "NANOCLAW_ICO": str(build / "nanoclaw.ico")})  # noqa: S603 - the build's own steps
    print(f"Built {out / f'NanoClaw-{version()}-setup.exe'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
