"""The durable local spool: accepted deliveries wait here while the database is down.

One JSON file per delivery, written to a temporary name, fsync'd, renamed into place and
the directory fsync'd — so once the vendor hears "accepted", a power cut cannot lose it.
`spool_drain` stores the files through the same dedupe path as live deliveries and removes
each one only after its row is committed.
"""

import base64
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils.dateparse import parse_datetime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpooledDelivery:
    connection_id: str
    vendor: str
    event_type: str
    dedupe_key: str
    body: bytes
    headers: dict[str, str]
    verified_with: str
    received_at: datetime

    def to_json(self) -> str:
        data = asdict(self)
        data["body"] = base64.b64encode(self.body).decode()
        data["received_at"] = self.received_at.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "SpooledDelivery":
        data = json.loads(text)
        data["body"] = base64.b64decode(data["body"])
        data["received_at"] = parse_datetime(data["received_at"])
        return cls(**data)


def spool_dir() -> Path:
    path = Path(settings.FAILTRACK_SPOOL_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def spool_write(delivery: SpooledDelivery) -> Path:
    """Write one delivery durably; returns its file. Raises OSError if it cannot."""
    directory = spool_dir()
    name = f"{delivery.received_at.strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex}.json"
    temporary = directory / f".{name}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, delivery.to_json().encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    final = directory / name
    os.rename(temporary, final)
    directory_descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_descriptor)
    finally:
        os.close(directory_descriptor)
    return final


def spool_files() -> Iterator[Path]:
    """Spooled deliveries, oldest first."""
    directory = Path(settings.FAILTRACK_SPOOL_DIR)
    if not directory.is_dir():
        return iter(())
    return iter(sorted(p for p in directory.glob("*.json") if not p.name.startswith(".")))


def spool_size() -> int:
    return sum(1 for _ in spool_files())
