"""The Slack channel: a Slack app in the user's workspace, run with slack-bolt in Socket Mode inside our event loop.

Socket Mode means Slack is dialled from here over a websocket, so NanoClaw needs no public address. ``setup`` checks
the two tokens a Slack app has (the bot token with ``auth.test``, the app-level token with ``apps.connections.open``);
``factory.build`` makes the adapter when both are stored. ``connection`` runs bolt and reports the link's health
(``link``), ``inbound`` turns events and button clicks into neutral messages and card answers, ``outbound`` sends
(split text, files, Block Kit cards, edits, reactions) and ``blocks``/``formatting`` shape what Slack shows. Only
modules in this folder import ``slack_bolt``/``slack_sdk``, and only when the channel is built or a token is checked.
"""
