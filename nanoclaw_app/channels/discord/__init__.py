"""The Discord channel: a bot in the user's servers and DMs, run with discord.py inside our own event loop.

``setup`` checks a bot token (``GET /users/@me``) and builds the invite link; ``factory.build`` makes the adapter when
a token is stored. The adapter (``adapter.DiscordAdapter``) logs in and keeps a gateway connection in the background
(``connection``), so a Discord outage never blocks the app; discord.py reconnects and resumes by itself and ``link``
turns its events into the state the Channels page shows. ``inbound`` turns messages into neutral ones (a thread is its
own conversation) and button clicks into card answers, ``outbound`` sends replies (split at 2000 characters, files,
edits, reactions, buttons). Only modules in this folder import ``discord``, and only when the channel is built.
"""
