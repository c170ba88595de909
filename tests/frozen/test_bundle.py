"""What build.spec puts in the frozen program on Linux: the app and its libraries, never the system's GTK stack (the
window runs on the system's WebKitGTK, which must meet the system's GTK) and never the build machine's dev tools."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from PyInstaller.archive.readers import CArchiveReader  # type: ignore[import-untyped]

pytestmark = [
    pytest.mark.frozen,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the GTK stack is left out on Linux"),
]

# Libraries of the GObject stack that PyInstaller's hooks would copy, by their system sonames (libgtk-3.so.0,
# libicuuc.so.72, ...). Pillow's own copies of a few of them (libfreetype-57f805ba.so.6, with a hash) are Pillow's.
SYSTEM_GUI = re.compile(r"lib(gtk|gdk|glib|gobject|gio|gmodule|girepository|pango|cairo|harfbuzz|icu|rsvg|epoxy|"
                        r"atk|atspi|X11|xcb|fontconfig|freetype|webkit|javascriptcore|soup)(?![-.\w]*-[0-9a-f]{8}\.so)"
                        r"[-.\w]*\.so")
DEV_TOOLS = {"pydantic", "pydantic_core", "mypy", "hypothesis", "pytest", "_pytest"}


def test_the_binary_leaves_the_gtk_stack_to_the_system_and_carries_no_dev_tools(binary: Path) -> None:
    archive = CArchiveReader(str(binary))
    names = set(archive.toc)
    assert any(n.startswith("neonize/neonize-") for n in names)  # WhatsApp's library, loaded with ctypes
    assert any(n.startswith("gi/_gi") for n in names)  # the Python bindings stay; they open the system's libraries
    bundled_gui = sorted(n for n in names if "/" not in n and SYSTEM_GUI.match(n))
    assert bundled_gui == []
    assert not {"libstdc++.so.6", "libgcc_s.so.1"} & names  # the system WebKit needs the system's C++ runtime
    assert not any(n.startswith(("gi_typelibs/", "gio_modules/", "lib/gdk-pixbuf/", "share/glib-2.0/")) for n in names)
    # Without the typelibs, PyInstaller's GObject start-up hooks would point GTK at files that are not there.
    assert not any(n.startswith(("pyi_rth_gi", "pyi_rth_gtk", "pyi_rth_gdkpixbuf", "pyi_rth_glib")) for n in names)
    modules = archive.open_embedded_archive("PYZ.pyz").toc
    assert {name.split(".")[0] for name in modules} & DEV_TOOLS == set()
    assert "phonenumbers.geodata" not in modules  # the geocoder's 40 MB of place names: never used


def test_the_program_folder_for_the_packages_has_the_same_contents(binary: Path) -> None:
    folder = binary.parent / "nanoclaw-app"
    assert (folder / "nanoclaw").is_file()
    internal = folder / "_internal"
    assert (internal / "neonize").is_dir()
    assert sorted(p.name for p in internal.iterdir() if SYSTEM_GUI.match(p.name)) == []
    assert not (internal / "gi_typelibs").exists()
