"""Working time: business days per region, with public holidays and time on hold left out.

A *working day* is a whole local calendar day that falls on one of the configured weekdays
and is not a public holiday of the region's country (from the maintained `holidays`
package). "N business days" is N x 24 hours of working-day time. A calendar with every
weekday and no country counts plain elapsed time, so calendar-day rules use the same code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

DAY = 86400.0
ALL_WEEKDAYS = frozenset(range(1, 8))
MONDAY_TO_FRIDAY = frozenset(range(1, 6))


@functools.lru_cache(maxsize=64)
def _holiday_set(country: str, subdivision: str) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision or None)


def supported_countries() -> set[str]:
    """ISO country codes the holiday calendars know."""
    return set(holidays.list_supported_countries())


@dataclass(frozen=True)
class Hold:
    """An interval an application spent on hold; `end` None means still on hold."""

    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class WorkingCalendar:
    """Which local days count as working time for one region."""

    working_weekdays: frozenset[int] = ALL_WEEKDAYS
    country: str = ""
    subdivision: str = ""
    timezone: str = "UTC"

    @property
    def counts_every_moment(self) -> bool:
        """True for plain elapsed time: every weekday, no holidays."""
        return self.working_weekdays == ALL_WEEKDAYS and not self.country

    @functools.cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")

    def is_working_day(self, day: date) -> bool:
        """True when `day` counts as working time."""
        if day.isoweekday() not in self.working_weekdays:
            return False
        return not (self.country and day in _holiday_set(self.country, self.subdivision))

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(self._zone)

    def _day_start(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self._zone)

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time between two instants, in seconds (0 when end <= start)."""
        if end <= start:
            return 0.0
        if self.counts_every_moment:
            return (end - start).total_seconds()
        total = 0.0
        local_start, local_end = self._local(start), self._local(end)
        day = local_start.date()
        while day <= local_end.date():
            if self.is_working_day(day):
                begin = max(local_start, self._day_start(day))
                finish = min(local_end, self._day_start(day + timedelta(days=1)))
                total += max(0.0, (finish - begin).total_seconds())
            day += timedelta(days=1)
        return total

    def add_working_time(self, start: datetime, seconds: float) -> datetime:
        """The instant at which `seconds` of working time have passed since `start`."""
        if self.counts_every_moment:
            return start + timedelta(seconds=seconds)
        remaining = seconds
        cursor = self._local(start)
        while True:
            day = cursor.date()
            next_day = self._day_start(day + timedelta(days=1))
            if self.is_working_day(day):
                available = (next_day - cursor).total_seconds()
                if remaining <= available:
                    return (cursor + timedelta(seconds=remaining)).astimezone(UTC)
                remaining -= available
            cursor = next_day

    def cutoff(self, end: datetime, seconds: float) -> datetime:
        """Earliest start whose working time until `end` is exactly `seconds`.

        A stay that began *before* the cutoff has more than `seconds` of working time by
        `end`; one that began at or after it has not. Used by scans to select in SQL.
        """
        if self.counts_every_moment:
            return end - timedelta(seconds=seconds)
        remaining = seconds
        cursor = self._local(end)
        while True:
            day_start = self._day_start(cursor.date())
            if cursor == day_start:  # walk into the previous day
                day_start = self._day_start(cursor.date() - timedelta(days=1))
            if self.is_working_day(day_start.date()):
                available = (cursor - day_start).total_seconds()
                if remaining <= available:
                    point = cursor - timedelta(seconds=remaining)
                    if remaining == available:
                        # Exactly at a day's start: any non-working time before it ties.
                        point = self._back_over_non_working(point)
                    return point.astimezone(UTC)
                remaining -= available
            cursor = day_start

    def _back_over_non_working(self, moment: datetime) -> datetime:
        cursor = moment
        while not self.is_working_day((cursor - timedelta(seconds=1)).date()):
            cursor = self._day_start((cursor - timedelta(seconds=1)).date())
        return cursor

    # --- with time on hold left out ----------------------------------------------------

    def active_seconds(self, start: datetime, end: datetime, holds: Iterable[Hold]) -> float:
        """Working time between start and end, less the working time spent on hold."""
        total = self.working_seconds(start, end)
        for hold in holds:
            hold_end = hold.end or end
            total -= self.working_seconds(max(start, hold.start), min(end, hold_end))
        return total

    def deadline(self, start: datetime, seconds: float, holds: Sequence[Hold]) -> datetime | None:
        """When `seconds` of working time not on hold have passed since `start`.

        None while the application is on hold before reaching it (the clock is stopped).
        """
        remaining = seconds
        cursor = start
        for hold in sorted(holds, key=lambda h: h.start):
            if hold.end is not None and hold.end <= cursor:
                continue
            if hold.start > cursor:
                free = self.working_seconds(cursor, hold.start)
                if remaining <= free:
                    return self.add_working_time(cursor, remaining)
                remaining -= free
            if hold.end is None:
                return None
            cursor = max(cursor, hold.end)
        return self.add_working_time(cursor, remaining)


def weekdays_valid(values: Sequence[int]) -> bool:
    """True for a non-empty list of distinct ISO weekdays (1 = Monday … 7 = Sunday)."""
    return (
        bool(values)
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 7 for v in values)
        and len(set(values)) == len(values)
    )
