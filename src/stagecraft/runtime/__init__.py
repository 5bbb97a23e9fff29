"""The runtime gateway: local processes (``process``), hosts over SSH (``ssh``), and
bounded parallel fan-out with aggregate results (``fanout``).

Everything else in Stagecraft runs commands through these modules, so quoting,
environment, streaming, timeouts and exit codes are handled in one place.
"""
