"""A stand-in for neonize's ``NewAClient`` at its Python surface: WhatsApp's servers are the only thing faked.

What stays real: neonize's own event registry (``neonize.aioze.events.Event``: ``client.event(X)(fn)`` and
``client.event.qr(fn)``), its protobuf event and message objects, its exceptions, and the way it dispatches: every
event is posted from another thread to the process-global ``event_global_loop`` with ``run_coroutine_threadsafe``,
exactly like the Go callback does. Two neonize behaviours that bite are kept on purpose:

* the set of delivered event types is taken when ``connect()`` is called (a handler registered later gets nothing);
* ``connect()`` sets the global loop only if none was set before in this process (so an adapter that does not point
  it at its own loop receives nothing in a second test).

The "device database" is the file at ``name``: pairing writes the account there, logging out empties it, so a new
client (a restarted host) on the same path comes up linked. ``sent`` captures everything sent. Builders at the bottom
produce messages in the shapes WhatsApp delivers them (recorded from real events' fields).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanoclaw_app.channels.whatsapp import native

OWN_NUMBER = "491701234567"
OWN_LID = "187654321098765"
FRIEND = "4915112345678"
GROUP = "120363025246125486@g.us"
DIAL_ERROR = ("failed to dial whatsapp web websocket: dial tcp: lookup web.whatsapp.com on 127.0.0.53:53: "
              "no such host")

_ids = itertools.count(1)


def message_id() -> str:
    """A WhatsApp-style message id (``3EB0…``)."""
    return f"3EB0{next(_ids):016X}"


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> Any:
    """A neonize ``JID``."""
    return native.JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0, IsEmpty=False)


_jid = jid


@dataclass
class Sent:
    """One message the client sent: to whom (``user@server``), the ``Message`` protobuf and the id it got."""

    chat: str
    message: Any
    id: str

    @property
    def text(self) -> str:
        """The text of a text message (or the caption of a media message)."""
        msg = self.message
        if msg.conversation:
            return str(msg.conversation)
        if msg.HasField("extendedTextMessage"):
            return str(msg.extendedTextMessage.text)
        for field in ("imageMessage", "documentMessage"):
            if msg.HasField(field):
                return str(getattr(msg, field).caption)
        return ""


class FakeNeonizeClient:
    """Fake ``NewAClient(name)``; build it with the device-database path the adapter passes to its factory."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.uuid = name.encode()
        self.event = native.events_module.Event(self)
        self.sent: list[Sent] = []
        self.presences: list[tuple[str, Any]] = []
        self.pair_requests: list[str] = []
        self.groups: dict[str, str] = {}
        """Group JID → name, answered by ``get_group_info``."""
        self.group_info_calls = 0
        self.media: dict[str, bytes] = {}
        """Direct path → bytes, served by ``download_any`` (builders register their files here)."""
        self.downloads = 0
        self.uploads: list[tuple[bytes, Any]] = []
        self.fail_dial = False
        """The next ``connect()`` fails like neonize offline (its task raises ``NeonizeError``)."""
        self.fail_sends: list[Exception | None] = []
        """What the next sends do, in order: raise the exception, or go through (None)."""
        self.pair_phone_error: str | None = None
        self.pair_code = "K7QX-2M9P"
        self.connect_calls = 0
        self.stop_calls = 0
        self.logout_calls = 0
        self.connected = False
        self.me: Any = None
        self._subscribed: frozenset[int] = frozenset()
        self._running = False
        self._ws_up = False
        self._stop: asyncio.Event | None = None
        self.connect_task: asyncio.Task[None] | None = None
        self._connect_seen = asyncio.Event()
        self._sent_event = asyncio.Event()

    # ------------------------------------------------------------------------------------------ device database

    @property
    def device_file(self) -> Path:
        return Path(self.name)

    def _stored(self) -> dict[str, str]:
        try:
            data = json.loads(self.device_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def is_logged_in(self) -> bool:
        return bool(self._stored().get("number"))

    @property
    def is_connected(self) -> bool:
        return self.connected

    # ------------------------------------------------------------------------------------------ lifecycle

    async def connect(self) -> asyncio.Task[None]:
        """Like ``NewAClient.connect``: snapshot the subscribed events, set the global loop once, start the task."""
        if self._running:
            raise AssertionError("connect() called on a client that is still running")
        loop = asyncio.get_running_loop()
        native.events_module.set_event_loop(loop)  # neonize's own: sets it only when unset
        self._subscribed = frozenset(self.event.list_func)
        self.connect_calls += 1
        self._running = True
        self._ws_up = False
        self.connected = False
        if not self.device_file.exists():
            self.device_file.write_text("")  # whatsmeow creates its database on the first connect
        self._stop = asyncio.Event()
        fail = self.fail_dial
        self.fail_dial = False
        self.connect_task = loop.create_task(self._run(fail))
        self._connect_seen.set()
        return self.connect_task

    async def _run(self, fail: bool) -> None:
        try:
            if fail:
                raise native.NeonizeError(DIAL_ERROR)
            assert self._stop is not None
            await self._stop.wait()
        finally:
            self._running = False
            self._ws_up = False
            self.connected = False

    async def stop(self) -> None:
        self.stop_calls += 1
        if self._stop is not None:
            self._stop.set()
        self.connected = False

    async def disconnect(self) -> None:
        self._alive()
        self.connected = False

    async def idle(self) -> None:
        if self.connect_task is not None:
            await self.connect_task

    async def logout(self) -> None:
        self._alive()
        if not self.connected:
            raise native.LogoutError("not logged in")
        self.logout_calls += 1
        self.device_file.write_text("")
        self.connected = False

    def _alive(self) -> None:
        if not self._running:
            raise AssertionError("called on a stopped client: the real Go side has forgotten it and would crash")

    # ------------------------------------------------------------------------------------------ queries

    async def get_me(self) -> Any:
        self._alive()
        stored = self._stored()
        return native.Device(JID=jid(stored.get("number", ""), device=12), LID=jid(stored.get("lid", ""), "lid", 12),
                             PushName="Me", Initialized=True)

    async def get_group_info(self, group: Any) -> Any:
        self._alive()
        self.group_info_calls += 1
        key = f"{group.User}@{group.Server}"
        if key not in self.groups:
            raise native.GetGroupInfoError("item-not-found")
        return native.GroupInfo(JID=group, GroupName=native.GroupName(Name=self.groups[key]))

    async def download_any(self, message: Any) -> bytes:
        self._alive()
        self.downloads += 1
        for field in ("imageMessage", "audioMessage", "videoMessage", "documentMessage", "stickerMessage"):
            if message.HasField(field):
                path = getattr(message, field).directPath
                if path in self.media:
                    return self.media[path]
                raise native.DownloadError("download failed with status code 404")
        raise native.DownloadError("no downloadable media in the message")

    # ------------------------------------------------------------------------------------------ sending

    async def send_message(self, to: Any, message: Any, link_preview: bool = False, **_: Any) -> Any:
        self._alive()
        failure = self.fail_sends.pop(0) if self.fail_sends else None
        if failure is not None:
            raise failure
        if not self.connected:
            raise native.SendMessageError("websocket not connected")
        if isinstance(message, str):
            message = native.Message(conversation=message)
        target = to if isinstance(to, str) else f"{to.User}@{to.Server}"
        sent = Sent(target, message, message_id())
        self.sent.append(sent)
        self._sent_event.set()
        return native.SendResponse(ID=sent.id, Timestamp=1_760_000_000, Message=message)

    async def upload(self, binary: bytes, media_type: Any = None) -> Any:
        self._alive()
        if not self.connected:
            raise native.UploadError("websocket not connected")
        self.uploads.append((binary, media_type))
        path = f"/v/t62.{len(self.uploads)}/upload"
        self.media[path] = binary
        return native.UploadResponse(url=f"https://mmg.whatsapp.net{path}", DirectPath=path, MediaKey=b"k" * 32,
                                     FileEncSHA256=b"e" * 32, FileSHA256=b"s" * 32, FileLength=len(binary))

    async def send_document(self, to: Any, file: bytes, caption: str | None = None, title: str | None = None,
                            filename: str | None = None, mimetype: str | None = None, **_: Any) -> Any:
        if mimetype is None:
            raise AssertionError("send_document without mimetype= sniffs with python-magic (absent in a frozen app)")
        upload = await self.upload(file, native.MediaType.MediaDocument)
        document = native.DocumentMessage(URL=upload.url, directPath=upload.DirectPath, mediaKey=upload.MediaKey,
                                          fileLength=upload.FileLength, mimetype=mimetype, title=title,
                                          fileName=filename, caption=caption)
        return await self.send_message(to, native.Message(documentMessage=document))

    async def send_image(self, *_: Any, **__: Any) -> Any:
        raise AssertionError("send_image sniffs the type with python-magic (absent in a frozen app)")

    async def build_reaction(self, chat: Any, sender: Any, message_id: str, reaction: str) -> Any:
        self._alive()
        from_me = sender.User in (self._stored().get("number"), self._stored().get("lid"))
        key = native.MessageKey(remoteJID=f"{chat.User}@{chat.Server}", fromMe=from_me, ID=message_id)
        if chat.Server == "g.us":
            key.participant = f"{sender.User}@{sender.Server}"
        return native.Message(reactionMessage=native.ReactionMessage(key=key, text=reaction,
                                                                     senderTimestampMS=1_760_000_000_000))

    async def send_chat_presence(self, to: Any, state: Any, media: Any) -> None:
        self._alive()
        self.presences.append((f"{to.User}@{to.Server}", state))

    async def PairPhone(self, phone: str, show_push_notification: bool, client_name: Any = None,
                        client_type: Any = None) -> str:
        if not self._ws_up:
            raise native.PairPhoneError("client is nil: ensure client is connected before calling PairPhone")
        if self.pair_phone_error:
            raise native.PairPhoneError(self.pair_phone_error)
        self.pair_requests.append(phone)
        return self.pair_code

    # ------------------------------------------------------------------------------------------ test controls

    async def wait_connect_call(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``connect()`` was called ``count`` times in all."""
        async with asyncio.timeout(timeout):
            while self.connect_calls < count:
                self._connect_seen.clear()
                await self._connect_seen.wait()

    def texts(self, chat: str | None = None) -> list[str]:
        """Texts sent so far (to one chat, when given)."""
        return [s.text for s in self.sent if chat is None or s.chat == chat]

    async def wait_sent(self, count: int, timeout: float = 10.0) -> list[Sent]:
        """Wait until at least ``count`` messages were sent in all."""
        async with asyncio.timeout(timeout):
            while len(self.sent) < count:
                self._sent_event.clear()
                await self._sent_event.wait()
        return self.sent

    async def emit_qr(self, data: str) -> None:
        """WhatsApp issued (or rotated) the pairing QR code; the websocket is up."""
        self._require_running()
        self._ws_up = True
        await self._post(self.event._qr(self, data.encode()))

    async def emit_pair_success(self, jid: str = f"{OWN_NUMBER}@s.whatsapp.net", lid: str = OWN_LID) -> bool:
        """The phone scanned the code: the account is stored in the device database."""
        number = jid.partition("@")[0].split(":")[0]
        self.device_file.write_text(json.dumps({"number": number, "lid": lid}))
        event = native.PairStatusEv(ID=_jid(number, device=12), BusinessName="", Platform="android",
                                    Status=native.PairStatus.SUCCESS)
        return await self._dispatch(event)

    async def emit_pair_error(self, error: str) -> bool:
        return await self._dispatch(native.PairStatusEv(Status=native.PairStatus.ERROR, Error=error))

    async def emit_connected(self) -> bool:
        """Logged in and online (only possible with a linked device)."""
        if not self.is_logged_in:
            raise AssertionError("WhatsApp sends Connected only to a linked device")
        self._ws_up = True
        self.connected = True
        return await self._dispatch(native.ConnectedEv(status=True))

    async def emit_disconnected(self) -> bool:
        self.connected = False
        return await self._dispatch(native.DisconnectedEv(status=True))

    async def emit_stream_error(self, code: str) -> bool:
        self.connected = False
        return await self._dispatch(native.StreamErrorEv(Code=code))

    async def emit_keepalive_timeout(self) -> bool:
        return await self._dispatch(native.KeepAliveTimeoutEv(ErrorCount=3, LastSuccess=1_760_000_000))

    async def emit_keepalive_restored(self) -> bool:
        return await self._dispatch(native.KeepAliveRestoredEv())

    async def emit_connect_failure(self, reason: str, message: str = "") -> bool:
        self.connected = False
        code = native.ConnectFailureReason.Value(reason)
        return await self._dispatch(native.ConnectFailureEv(Reason=code, Message=message))

    async def emit_logged_out(self, reason: str = "LOGGED_OUT", on_connect: bool = False) -> bool:
        """Unlinked on the phone: whatsmeow deletes the device from its database."""
        self.connected = False
        self.device_file.write_text("")
        event = native.LoggedOutEv(OnConnect=on_connect, Reason=native.ConnectFailureReason.Value(reason))
        return await self._dispatch(event)

    async def emit_temporary_ban(self, code: str = "SEND_TO_TOO_MANY_PEOPLE", expire_seconds: int = 3600) -> bool:
        self.connected = False
        event = native.TemporaryBanEv(Code=native.TemporaryBan.TempBanReason.Value(code), Expire=expire_seconds)
        return await self._dispatch(event)

    async def emit_stream_replaced(self) -> bool:
        self.connected = False
        return await self._dispatch(native.StreamReplacedEv())

    async def emit_client_outdated(self) -> bool:
        self.connected = False
        return await self._dispatch(native.ClientOutdatedEv())

    async def emit_message(self, event: Any) -> bool:
        """A ``MessageEv`` arrives; returns False when no handler was subscribed at connect time."""
        return await self._dispatch(event)

    def echo_of(self, sent: Sent) -> Any:
        """How WhatsApp shows one of our sends again, from our own account (in the self chat, on every device)."""
        user, _, server = sent.chat.partition("@")
        return _event(chat=jid(user, server), sender=jid(self._stored().get("number", OWN_NUMBER), device=0),
                      message=sent.message, from_me=True, push_name="Me", msg_id=sent.id)

    # ------------------------------------------------------------------------------------------ dispatch

    def _require_running(self) -> None:
        if not self._running:
            raise AssertionError("neonize delivers nothing before connect() (or after stop())")

    async def _dispatch(self, message: Any) -> bool:
        """Post to the handler subscribed at connect time, from another thread, as the Go callback does."""
        self._require_running()
        code = native.events_module.EVENT_TO_INT[type(message)]
        if code == 3:
            self.connected = True  # neonize's Event.execute does the same for Connected
        handler = self.event.list_func.get(code)
        if handler is None or code not in self._subscribed:
            return False
        await self._post(handler(self, message))
        return True

    async def _post(self, coro: Any) -> None:
        target = native.events_module.event_global_loop
        running = asyncio.get_running_loop()
        if target is not running:
            coro.close()
            raise AssertionError("neonize would post this event to another event loop (libraries §1, gotcha 3)")
        future = await asyncio.to_thread(asyncio.run_coroutine_threadsafe, coro, target)
        await asyncio.wrap_future(future)


# ---------------------------------------------------------------------------------------------- message builders


def _event(*, chat: Any, sender: Any, message: Any, from_me: bool = False, is_group: bool = False,
           push_name: str = "Ann", msg_id: str | None = None, media_type: str = "") -> Any:
    source = native.MessageSource(Chat=chat, Sender=sender, IsFromMe=from_me, IsGroup=is_group)
    info = native.MessageInfo(MessageSource=source, ID=msg_id or message_id(), Type="media" if media_type else "text",
                              Pushname=push_name, Timestamp=1_763_731_200_123, MediaType=media_type)
    return native.MessageEv(Info=info, Message=message, Raw=message)


def text_dm(text: str, *, sender: str = FRIEND, push_name: str = "Ann", msg_id: str | None = None) -> Any:
    """A text typed on a phone in a one-to-one chat (``conversation``, sent from the sender's phone, device 0)."""
    return _event(chat=jid(sender), sender=jid(sender), message=native.Message(conversation=text),
                  push_name=push_name, msg_id=msg_id)


def group_text(text: str, *, group: str = GROUP, sender: str = FRIEND, push_name: str = "Ann",
               mentions: tuple[str, ...] = (), msg_id: str | None = None) -> Any:
    """A group message; with ``mentions`` (JIDs) it is an ``extendedTextMessage`` carrying ``mentionedJID``."""
    user, _, server = group.partition("@")
    if mentions:
        message = native.Message(extendedTextMessage=native.ExtendedTextMessage(
            text=text, contextInfo=native.ContextInfo(mentionedJID=list(mentions))))
    else:
        message = native.Message(conversation=text)
    return _event(chat=jid(user, server), sender=jid(sender, "lid" if sender == OWN_LID else "s.whatsapp.net", 3),
                  message=message, is_group=True, push_name=push_name, msg_id=msg_id)


def quoted_reply(text: str, *, quoted_text: str, quoted_id: str, quoted_sender: str, sender: str = FRIEND,
                 chat: str | None = None) -> Any:
    """A swipe-reply: ``extendedTextMessage`` whose ``contextInfo`` names the quoted message and its sender."""
    context = native.ContextInfo(stanzaID=quoted_id, participant=quoted_sender,
                                 quotedMessage=native.Message(conversation=quoted_text))
    message = native.Message(extendedTextMessage=native.ExtendedTextMessage(text=text, contextInfo=context))
    where = chat or f"{sender}@s.whatsapp.net"
    user, _, server = where.partition("@")
    return _event(chat=jid(user, server), sender=jid(sender), message=message, is_group=server == "g.us")


def _media_path(client: FakeNeonizeClient | None, data: bytes) -> str:
    path = f"/v/t62.7118-24/{message_id()}.enc"
    if client is not None:
        client.media[path] = data
    return path


def image(client: FakeNeonizeClient | None, data: bytes, *, caption: str = "", sender: str = FRIEND,
          mimetype: str = "image/jpeg", file_length: int | None = None) -> Any:
    """A photo; its bytes are registered with ``client`` for ``download_any``."""
    part = native.ImageMessage(URL="https://mmg.whatsapp.net/x", directPath=_media_path(client, data),
                               mimetype=mimetype, caption=caption, fileLength=len(data) if file_length is None
                               else file_length, mediaKey=b"k" * 32, height=64, width=96)
    return _event(chat=jid(sender), sender=jid(sender), message=native.Message(imageMessage=part), media_type="image")


def voice_note(client: FakeNeonizeClient | None, data: bytes, *, sender: str = FRIEND, seconds: int = 4) -> Any:
    """A push-to-talk recording (``audioMessage`` with ``PTT``; Opus in Ogg)."""
    part = native.AudioMessage(URL="https://mmg.whatsapp.net/x", directPath=_media_path(client, data),
                               mimetype="audio/ogg; codecs=opus", PTT=True, seconds=seconds, fileLength=len(data),
                               mediaKey=b"k" * 32)
    return _event(chat=jid(sender), sender=jid(sender), message=native.Message(audioMessage=part), media_type="ptt")


def document(client: FakeNeonizeClient | None, data: bytes, *, filename: str, mimetype: str = "application/pdf",
             caption: str = "", sender: str = FRIEND) -> Any:
    """A file sent as a document (name and type as the sender's phone gave them)."""
    part = native.DocumentMessage(URL="https://mmg.whatsapp.net/x", directPath=_media_path(client, data),
                                  mimetype=mimetype, fileName=filename, title=filename, caption=caption,
                                  fileLength=len(data), mediaKey=b"k" * 32)
    return _event(chat=jid(sender), sender=jid(sender), message=native.Message(documentMessage=part),
                  media_type="document")


def self_chat(text: str, *, own: str = OWN_NUMBER, msg_id: str | None = None) -> Any:
    """The user typing in "Message yourself" on their phone: from their own account, in their own chat."""
    return _event(chat=jid(own), sender=jid(own), message=native.Message(conversation=text), from_me=True,
                  push_name="Me", msg_id=msg_id)


def own_outgoing(text: str, *, to: str = FRIEND, own: str = OWN_NUMBER) -> Any:
    """The user writing to someone else from their phone (WhatsApp shows it to every linked device)."""
    return _event(chat=jid(to), sender=jid(own), message=native.Message(conversation=text), from_me=True,
                  push_name="Me")
