"""Forked worker processes and the database connections they inherit."""

from typing import Any

from django.db import connections

# The parent's connection objects, held so that they are never finalised in a child.
_INHERITED: list[Any] = []


def inherited_connections_forget() -> None:
    """In a forked child: never use, and never close, the parent's database connections.

    A forked process holds copies of the parent's sockets. Closing one sends the server a
    Terminate message on the parent's session, and using one mixes two processes' messages
    on one session: either way "server closed the connection unexpectedly" in one of them.
    The parent closes its connections before forking, but a connection it could not close
    (Django keeps one a transaction is using) must not travel. So a child keeps the
    inherited connection objects referenced (a child ends with os._exit: they are never
    finalised) and forgets them: its first query opens a connection of its own.
    """
    for connection in connections.all(initialized_only=True):
        _INHERITED.append(connection)
        del connections[connection.alias]
