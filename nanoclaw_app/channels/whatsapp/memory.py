"""What the adapter remembers about recent messages: which ids are ours, and who sent the others.

Ours: WhatsApp shows the messages we send in the user's own chat again (from the user's account), so our replies in
"Message yourself" would loop back to the agent without this. Theirs: a reaction must name the sender of the message
it reacts to. Both are bounded; forgetting an old id only costs a reaction to a very old message.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_SIZE = 4096


class MessageMemory:
    """Bounded id → sender map (``""`` marks our own messages)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._senders: OrderedDict[str, str] = OrderedDict()

    def ours(self, message_id: str) -> None:
        """We sent this message."""
        self._put(message_id, "")

    def theirs(self, message_id: str, sender: str) -> None:
        """Someone (``sender``, a bare JID) sent this message to us."""
        if self._senders.get(message_id) == "":
            return  # never let an echo of our own message turn it into theirs
        self._put(message_id, sender)

    def is_ours(self, message_id: str) -> bool:
        """Whether we sent it."""
        return self._senders.get(message_id) == ""

    def sender(self, message_id: str) -> str | None:
        """Who sent it: a bare JID, ``""`` for us, None when forgotten or never seen."""
        return self._senders.get(message_id)

    def _put(self, message_id: str, sender: str) -> None:
        if not message_id:
            return
        self._senders[message_id] = sender
        self._senders.move_to_end(message_id)
        while len(self._senders) > self._size:
            self._senders.popitem(last=False)
