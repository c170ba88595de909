"""The one place that imports neonize: its client, event types, protobuf messages, enums and exceptions.

Importing neonize loads its native library and, on Linux, runs ``uname -a`` through ``os.popen`` without closing the
pipe or waiting for the process (``neonize/utils/platform.py``); the standard library would reap it, with a
``ResourceWarning``, whenever some later subprocess starts. So for the import ``os.popen`` runs its command to the end
and hands back the output (neonize only reads it), and nothing is left behind.

neonize ships no type information, so everything here is ``Any`` for the type checker; the rest of the package uses
these names and nothing else from neonize.
"""

from __future__ import annotations

import io
import os
import subprocess
from typing import Any


def _popen_to_end(cmd: str, mode: str = "r", buffering: int = -1) -> io.StringIO:
    """``os.popen`` for reading, but the command has finished and been waited for when this returns."""
    # neonize's own fixed command ("uname -a"), run as os.popen would run it.
    result = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)  # noqa: S602
    return io.StringIO(result.stdout)


_real_popen = os.popen
os.popen = _popen_to_end  # type: ignore[assignment]
try:
    from neonize import exc as _exc  # type: ignore[import-untyped]
    from neonize.aioze import client as _client  # type: ignore[import-untyped]
    from neonize.aioze import events as _events
    from neonize.proto import Neonize_pb2 as _proto  # type: ignore[import-untyped]
    from neonize.proto.waCommon import WACommon_pb2 as _common  # type: ignore[import-untyped]
    from neonize.proto.waCompanionReg import (  # type: ignore[import-untyped]
        WAWebProtobufsCompanionReg_pb2 as _companion,
    )
    from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as _e2e  # type: ignore[import-untyped]
    from neonize.utils import enum as _enum  # type: ignore[import-untyped]
finally:
    os.popen = _real_popen

events_module: Any = _events
"""``neonize.aioze.events``: holds the process-global ``event_global_loop`` events are posted to."""

NewAClient: Any = _client.NewAClient
DeviceProps: Any = _companion.DeviceProps

# Events (registered with ``client.event(<type>)(handler)``).
QREv: Any = _events.QREv
PairStatusEv: Any = _events.PairStatusEv
ConnectedEv: Any = _events.ConnectedEv
DisconnectedEv: Any = _events.DisconnectedEv
LoggedOutEv: Any = _events.LoggedOutEv
StreamReplacedEv: Any = _events.StreamReplacedEv
StreamErrorEv: Any = _events.StreamErrorEv
TemporaryBanEv: Any = _events.TemporaryBanEv
ConnectFailureEv: Any = _events.ConnectFailureEv
ClientOutdatedEv: Any = _events.ClientOutdatedEv
KeepAliveTimeoutEv: Any = _events.KeepAliveTimeoutEv
KeepAliveRestoredEv: Any = _events.KeepAliveRestoredEv
MessageEv: Any = _events.MessageEv

# neonize's own types.
JID: Any = _proto.JID
Device: Any = _proto.Device
GroupInfo: Any = _proto.GroupInfo
GroupName: Any = _proto.GroupName
SendResponse: Any = _proto.SendResponse
UploadResponse: Any = _proto.UploadResponse
MessageInfo: Any = _proto.MessageInfo
MessageSource: Any = _proto.MessageSource
ConnectFailureReason: Any = _proto.ConnectFailureReason
PairStatus: Any = _proto.PairStatus
TemporaryBan: Any = _proto.TemporaryBan

# WhatsApp's end-to-end message protobufs.
Message: Any = _e2e.Message
ExtendedTextMessage: Any = _e2e.ExtendedTextMessage
ImageMessage: Any = _e2e.ImageMessage
AudioMessage: Any = _e2e.AudioMessage
DocumentMessage: Any = _e2e.DocumentMessage
VideoMessage: Any = _e2e.VideoMessage
ReactionMessage: Any = _e2e.ReactionMessage
ContextInfo: Any = _e2e.ContextInfo
MessageKey: Any = _common.MessageKey

# Enums.
MediaType: Any = _enum.MediaType
ChatPresence: Any = _enum.ChatPresence
ChatPresenceMedia: Any = _enum.ChatPresenceMedia
ClientName: Any = _enum.ClientName
ClientType: Any = _enum.ClientType

# Exceptions.
NeonizeError: type[Exception] = _exc.NeonizeError
SendMessageError: type[Exception] = _exc.SendMessageError
DownloadError: type[Exception] = _exc.DownloadError
UploadError: type[Exception] = _exc.UploadError
PairPhoneError: type[Exception] = _exc.PairPhoneError
LogoutError: type[Exception] = _exc.LogoutError
GetGroupInfoError: type[Exception] = _exc.GetGroupInfoError
SendPresenceError: type[Exception] = _exc.SendPresenceError


def enum_name(enum: Any, value: int) -> str:
    """The name of a protobuf enum value (``LOGGED_OUT``), or ``""`` for an unset or unknown value."""
    try:
        return str(enum.Name(value))
    except ValueError:
        return ""
