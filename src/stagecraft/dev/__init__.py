"""The engine parts of ``stagecraft dev`` (SPEC section 5).

- :mod:`~stagecraft.dev.supervisor`: run dev servers side by side: readiness,
  merged output, crash reports and restarts, a clean stop of every process tree
  (values in :mod:`~stagecraft.dev.model`, restart rules in
  :mod:`~stagecraft.dev.restart`, ``/proc`` helpers in :mod:`~stagecraft.dev.proctree`).
- :mod:`~stagecraft.dev.logprefix`: render merged output as aligned ``name |`` lines.
- :mod:`~stagecraft.dev.certs`: leaf certificates for the dev hostnames, from the
  local CA of :mod:`~stagecraft.dev.ca` (mkcert's or Stagecraft's own);
  :mod:`~stagecraft.dev.trust` installs that CA into the system trust store.
- :mod:`~stagecraft.dev.hostsfile`: managed ``/etc/hosts`` lines for dev domains
  outside ``*.localhost``.

Nothing here prints or exits: results are values, callbacks and exceptions.
Submodules are imported on use (``cryptography`` only when certificates are
made), so importing this package costs nothing.
"""
