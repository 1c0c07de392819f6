"""One delivery posted from several threads at once, as two workers would receive it."""

import threading

from django.db import connection as db_connection
from django.test import Client

from failures.models import AtsConnection


def post_at_once(
    connection: AtsConnection,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    copies: int = 2,
    content_type: str = "application/json",
) -> list[int]:
    """The statuses of `copies` identical posts released together by a barrier.

    Each thread has its own test client and closes its own database connection (tests using
    this need `django_db(transaction=True)`); an exception in a thread is raised here.
    """
    barrier = threading.Barrier(copies)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            http = Client(raise_request_exception=False)
            barrier.wait(timeout=10)
            response = http.post(
                f"/api/v1/hooks/{connection.vendor}/{connection.pk}/",
                data=body,
                content_type=content_type,
                headers=headers or {},
            )
            statuses.append(response.status_code)
        except BaseException as exc:  # raised by the caller's thread below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=post) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return statuses
