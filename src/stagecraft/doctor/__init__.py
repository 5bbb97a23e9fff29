"""`stagecraft doctor`: check the machine, the config, the providers and the hosts."""

from stagecraft.doctor.checks import Check, Status, run_checks

__all__ = ["Check", "Status", "run_checks"]
