"""A progress bar for long-running management commands, with no dependency."""

import sys
import time
from typing import TextIO


class Progress:
    """Prints `label  done/total (pct) rate/s ETA` at most a few times a second."""

    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, unit: str = "items"
    ) -> None:
        self.total = max(total, 0)
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.monotonic()
        self._last_print = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_decile = -1

    def advance(self, count: int = 1) -> None:
        """Count `count` more items done and redraw when it is time to."""
        self.done += count
        now = time.monotonic()
        if self._tty:
            if now - self._last_print >= 0.2:
                self._last_print = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        else:
            decile = (10 * self.done // self.total) if self.total else 10
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(self._line(now) + "\n")
                self.stream.flush()

    def finish(self) -> None:
        """Print the final line."""
        line = self._line(time.monotonic())
        self.stream.write(("\r" + line + "\n") if self._tty else (line + "\n"))
        self.stream.flush()

    def _line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        pct = (100.0 * self.done / self.total) if self.total else 100.0
        remaining = (self.total - self.done) / rate if rate > 0 else 0.0
        return (
            f"{self.label}  {self.done:,}/{self.total:,} {self.unit} ({pct:5.1f}%)  "
            f"{rate:,.0f}/s  elapsed {_clock(elapsed)}  ETA {_clock(remaining)}"
        )


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"
