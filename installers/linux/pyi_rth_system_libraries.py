"""PyInstaller start-up hook (build.spec, Linux): the programs NanoClaw starts get the system's library path.

The frozen program's loader puts the bundle's folder first in ``LD_LIBRARY_PATH`` so that the app finds its own
libraries. Every program the app starts would inherit it (``podman system service``, WebKit's web and network
processes, ``xdg-open``) and load the bundle's copies of libraries such as SQLite or libstdc++ instead of the
system's, which breaks them wherever the system's are newer than the build machine's. The app itself keeps its own:
the dynamic loader read the path once, when the program started, and changing the environment now only affects
children.
"""

import os

_original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
if _original is not None:
    os.environ["LD_LIBRARY_PATH"] = _original
else:
    os.environ.pop("LD_LIBRARY_PATH", None)
del _original
