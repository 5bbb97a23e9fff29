"""What Stagecraft keeps on hosts, and reads back from them.

- :mod:`.layout`: where the state lives (ADR 0005 section 2), the environment's hosts;
- :mod:`.lock`: the deploy lock of an environment;
- :mod:`.ledger`: the release records per host (history, rollback targets, prune);
- :mod:`.containers`: what actually runs, read from container labels.
"""
