"""The WhatsApp channel: this computer as a linked device of the user's WhatsApp (neonize, i.e. whatsmeow in-process).

Only :mod:`.factory` is reached from outside (through the channel registry); every module that touches neonize is
imported from there, so the 18 MB native library loads only when the user turns WhatsApp on.
"""
