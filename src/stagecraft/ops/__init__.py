"""Looking at and into a deployed environment, without changing it.

``status`` (what runs where), ``logs`` (a service's logs across hosts),
``exec``/``ssh`` (a shell in a container or on a host) and ``secrets check``
(every declared secret resolves). Deploying is :mod:`stagecraft.deploy`'s.
"""
