"""dmgbuild settings for NanoClaw's disk image (``dmgbuild -s`` runs this file with ``defines``).

installers/macos/build.py passes the app bundle (``-D app=...``) and the icon (``-D icon=...``). The window shows the
app and a link to /Applications side by side: the usual “drag the app to Applications” disk image.
"""

from pathlib import PurePosixPath

application = defines.get("app", "dist/NanoClaw.app")  # noqa: F821 - given by dmgbuild
app_name = PurePosixPath(application).name

format = "UDZO"  # compressed, read-only
filesystem = "HFS+"
size = None  # dmgbuild works it out from the files
files = [application]
symlinks = {"Applications": "/Applications"}
icon = defines.get("icon") or None  # noqa: F821 - the volume's icon
badge_icon = None
icon_locations = {app_name: (140, 170), "Applications": (400, 170)}
window_rect = ((200, 160), (540, 360))
default_view = "icon-view"
show_status_bar = False
show_tab_view = False
show_toolbar = False
show_pathbar = False
show_sidebar = False
icon_size = 112
text_size = 13
arrange_by = None
license = None
