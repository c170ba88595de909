"""The Telegram channel: a bot the user talks to, run with python-telegram-bot inside our own event loop.

``setup`` checks a BotFather token (``getMe``); ``factory.build`` makes the adapter when a token is stored. The adapter
(``adapter.TelegramAdapter``) long-polls for updates in the background, so a Telegram outage never blocks the app;
``inbound`` turns updates into neutral messages, ``outbound`` sends replies (split, formatted, files, cards) and
``link`` keeps the connection state the app shows. Only modules in this folder import the ``telegram`` library, and
only when the channel is built, so listing the channels stays cheap.
"""
