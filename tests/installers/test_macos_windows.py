"""The macOS and Windows installers' parts that can be checked off those systems: what the macOS build runs with and
without signing and notarization credentials, the disk image's settings, the entitlements, the icons, and that the
Windows installer agrees with the app about its login start and its data folder."""

from __future__ import annotations

import importlib.util
import io
import plistlib
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from nanoclaw_app.desktop import autostart
from nanoclaw_app.paths import APP_NAME

REPO = Path(__file__).resolve().parents[2]
ISS = REPO / "installers" / "windows" / "nanoclaw.iss"
IDENTITY = "Developer ID Application: Example Person (AB12CD34EF)"


def _load(relative: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(relative).stem + "_under_test", REPO / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def macos() -> ModuleType:
    return _load("installers/macos/build.py")


def _commands(macos: ModuleType, env: dict[str, str], tmp_path: Path) -> tuple[list[str], list[str]]:
    plan = macos.plan(tmp_path / "dist", tmp_path / "build", env)
    return [" ".join(argv) for argv in plan.commands(build=tmp_path / "build")], plan.skipped


def test_without_credentials_the_dmg_is_built_and_both_skips_are_explained(macos: ModuleType, tmp_path: Path) -> None:
    commands, skipped = _commands(macos, {}, tmp_path)
    assert any("PyInstaller" in c for c in commands)
    assert any("dmgbuild" in c and c.endswith("NanoClaw-0.1.0.dmg") for c in commands)
    assert not any(c.startswith(("codesign", "xcrun")) for c in commands)
    assert skipped[0].startswith("Code signing skipped: MACOS_SIGN_IDENTITY is not set")
    assert skipped[1].startswith("Notarization skipped: set MACOS_NOTARY_KEY")


def test_with_an_identity_everything_is_signed_with_the_hardened_runtime(macos: ModuleType, tmp_path: Path) -> None:
    commands, skipped = _commands(macos, {"MACOS_SIGN_IDENTITY": IDENTITY}, tmp_path)
    signs = [c for c in commands if c.startswith("codesign --force")]
    assert len(signs) == 3  # the app's files, the app, the .dmg
    assert all("--options runtime" in c and "--entitlements" in c for c in signs[:2])
    assert all(f"--sign {IDENTITY}" in c for c in signs)
    order = [c.split(" ")[0] + (" dmg" if "dmgbuild" in c else "") for c in commands]
    assert order.index("codesign") < order.index(next(o for o in order if o.endswith(" dmg")))
    assert len(skipped) == 1
    assert skipped[0].startswith("Notarization skipped")


@pytest.mark.parametrize("env", [
    {"MACOS_NOTARY_KEY": "/k.p8", "MACOS_NOTARY_KEY_ID": "KEY123", "MACOS_NOTARY_ISSUER": "issuer-uuid"},
    {"MACOS_NOTARY_APPLE_ID": "me@example.com", "MACOS_NOTARY_PASSWORD": "abcd-efgh", "MACOS_NOTARY_TEAM_ID": "T1"},
])
def test_notarization_runs_with_either_kind_of_credentials_and_staples(macos: ModuleType, tmp_path: Path,
                                                                      env: dict[str, str]) -> None:
    commands, skipped = _commands(macos, {"MACOS_SIGN_IDENTITY": IDENTITY, **env}, tmp_path)
    assert skipped == []
    submit = next(c for c in commands if "notarytool submit" in c)
    assert "--wait" in submit
    assert commands[-2:] == [f"xcrun stapler staple {tmp_path}/dist/NanoClaw-0.1.0.dmg",
                             f"xcrun stapler validate {tmp_path}/dist/NanoClaw-0.1.0.dmg"]
    assert macos.shown(submit.split(" ")).count("abcd-efgh") == 0


def test_notarization_without_signing_is_skipped_with_the_reason(macos: ModuleType, tmp_path: Path) -> None:
    commands, skipped = _commands(macos, {"MACOS_NOTARY_APPLE_ID": "a", "MACOS_NOTARY_PASSWORD": "b",
                                          "MACOS_NOTARY_TEAM_ID": "c"}, tmp_path)
    assert "Apple notarizes only signed apps" in skipped[-1]
    assert not any("notarytool" in c for c in commands)


def test_nested_code_is_signed_deepest_first_and_only_mach_o(macos: ModuleType, tmp_path: Path) -> None:
    app = tmp_path / "NanoClaw.app"
    macho = b"\xcf\xfa\xed\xfe" + b"\0" * 60
    files = {"Contents/MacOS/nanoclaw": macho, "Contents/Frameworks/libpython3.11.dylib": macho,
             "Contents/Frameworks/neonize/neonize-darwin-arm64.dylib": macho,
             "Contents/Resources/ui/static/app.js": b"// js", "Contents/Info.plist": b"<?xml"}
    for name, data in files.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_bytes(data)
    order = [str(p.relative_to(app)) for p in macos.signing_order(app)]
    assert order == ["Contents/Frameworks/neonize/neonize-darwin-arm64.dylib",
                     "Contents/Frameworks/libpython3.11.dylib", "Contents/MacOS/nanoclaw"]


def test_the_entitlements_allow_what_a_python_app_needs_and_no_sandbox() -> None:
    with open(REPO / "installers" / "macos" / "entitlements.plist", "rb") as file:
        entitlements = plistlib.load(file)
    assert entitlements == {"com.apple.security.cs.allow-unsigned-executable-memory": True,
                            "com.apple.security.cs.disable-library-validation": True}


def test_the_disk_image_shows_the_app_next_to_applications() -> None:
    settings: dict[str, Any] = {"defines": {"app": "/tmp/dist/NanoClaw.app", "icon": "/tmp/b/NanoClaw.icns"}}
    path = REPO / "installers" / "macos" / "dmg_settings.py"
    exec(compile(path.read_text(), str(path), "exec"), settings)  # what `dmgbuild -s` does
    assert settings["files"] == ["/tmp/dist/NanoClaw.app"]
    assert settings["symlinks"] == {"Applications": "/Applications"}
    assert set(settings["icon_locations"]) == {"NanoClaw.app", "Applications"}
    assert settings["icon"] == "/tmp/b/NanoClaw.icns"
    assert settings["format"] == "UDZO"


def test_the_icons_are_real_icns_and_ico_files(macos: ModuleType, tmp_path: Path) -> None:
    from PIL import Image

    windows = _load("installers/windows/build.py")
    macos.write_icns(tmp_path / "NanoClaw.icns")
    windows.write_ico(tmp_path / "nanoclaw.ico")
    with Image.open(tmp_path / "NanoClaw.icns") as icns:
        assert icns.format == "ICNS"
        assert (512, 512, 2) in icns.info["sizes"]
    with Image.open(io.BytesIO((tmp_path / "nanoclaw.ico").read_bytes())) as ico:
        assert ico.format == "ICO"
        assert {(16, 16), (32, 32), (256, 256)} <= set(ico.info["sizes"])


def _iss_section(name: str) -> str:
    text = ISS.read_text()
    found = re.search(rf"^\[{name}\]\n(.*?)(?=^\[|\Z)", text, re.S | re.M)
    assert found is not None, name
    return found.group(1)


def test_the_windows_installer_is_per_user_with_a_start_menu_entry() -> None:
    setup = _iss_section("Setup")
    assert "PrivilegesRequired=lowest" in setup
    assert "DefaultDirName={autopf}\\NanoClaw" in setup
    assert '{autoprograms}\\NanoClaw"; Filename: "{app}\\NanoClaw.exe"' in _iss_section("Icons")


def test_the_windows_login_start_is_the_one_the_app_switches() -> None:
    registry = _iss_section("Registry")
    run_key = autostart.RUN_KEY.replace("\\", "\\")
    assert f'Subkey: "{run_key}"; ValueType: string; ValueName: "{autostart.RUN_VALUE}"' in registry
    assert f'ValueData: """{{app}}\\NanoClaw.exe"" {autostart.BACKGROUND_FLAG}"; Tasks: startatlogin' in registry
    assert f'ValueName: "{autostart.RUN_VALUE}"; Flags: uninsdeletevalue' in registry
    assert "Flags: unchecked" not in next(line for line in _iss_section("Tasks").splitlines() if "startatlogin" in line)


def test_the_windows_uninstaller_keeps_data_unless_the_box_is_ticked() -> None:
    code = _iss_section("Code")
    assert "Box.Checked := False;" in code
    assert "RemoveData := Box.Checked" in code
    assert "if UninstallSilent() then" in code
    assert f"DelTree(ExpandConstant('{{localappdata}}\\{APP_NAME}'), True, True, True)" in code
    assert "(CurUninstallStep = usPostUninstall) and RemoveData" in code
