"""``stagecraft infra up / down``: the servers of an environment, from its cloud provider.

:mod:`stagecraft.infra.plan` compares what ``stagecraft.yml`` declares with
what the cloud has (by tags) and says what ``up`` creates and keeps, and what
``down`` destroys; :mod:`stagecraft.infra.provision` does it, records host
keys and addresses (:mod:`stagecraft.config.infra_state`) and hands the hosts
to ``hosts bootstrap``. ADR 0011 records the design.
"""
