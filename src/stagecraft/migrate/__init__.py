"""Database migrations for the project: the parts around the migration engine.

- :mod:`stagecraft.migrate.connection` -- where a database is for local dev
  (``url_env``, or the compose service's published port and credentials);
- :mod:`stagecraft.migrate.tunnel` -- an environment's database through an
  SSH tunnel to the host that runs it;
- :mod:`stagecraft.migrate.runner` -- which databases, engines and targets;
- :mod:`stagecraft.migrate.hooks` -- the deploy phases and ``dev`` start-up.

The engines themselves are providers (:mod:`stagecraft.providers.migration`).
"""
