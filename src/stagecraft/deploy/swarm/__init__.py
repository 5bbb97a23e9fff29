"""The Swarm deploy driver (issue 14, ADR 0017): the same app on a Docker Swarm.

Built so far: :mod:`.cluster` (form or find the swarm, label nodes by role,
the overlay network). Not yet wired to a command: the stack file, deploy,
rollback, status and logs come next (see ADR 0017).
"""
