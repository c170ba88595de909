"""The desktop app's background life: one instance per home, the tray icon, start at login, desktop notifications.

Everything here serves the window process (``nanoclaw``) except :mod:`.instance`, whose lock ``nanoclaw serve`` takes
too, so two hosts never run on one home.
"""
