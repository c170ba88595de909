"""The real neonize client, branded so the phone's "Linked devices" list shows "NanoClaw".

Each client gets its own in-process key (``uuid``): neonize stops the Go client of that key when the Python object is
garbage-collected, so a replaced client sharing the key of its successor would stop the successor.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from nanoclaw_app.channels.whatsapp import native

DEVICE_NAME = "NanoClaw"
_serial = itertools.count(1)


def new_client(device_db: str) -> Any:
    """A ``NewAClient`` over the device database at ``device_db`` (created by neonize on first connect)."""
    # DESKTOP shows the name alone; a browser type would show "Chrome (NanoClaw)", and UNKNOWN "Other device".
    props = native.DeviceProps(os=DEVICE_NAME, platformType=native.DeviceProps.DESKTOP, requireFullSync=False)
    return native.NewAClient(device_db, props=props, uuid=f"nanoclaw-whatsapp-{os.getpid()}-{next(_serial)}")
