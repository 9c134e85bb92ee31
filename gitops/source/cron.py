"""CronJob schedules, read as Kubernetes reads them and computed by apscheduler's cron trigger:
the one module that turns a ``schedule`` and ``timeZone`` into times.

Kubernetes' syntax is standard cron (minute, hour, day of month, month, day of week, where 0
and 7 are Sunday), the macros ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``,
``@daily`` (``@midnight``) and ``@hourly``, and an IANA ``timeZone`` (else the reconciler's
own). Two differences from apscheduler 3 are bridged here: its weekday 0 is Monday (so the
weekdays are handed to it by name), and it ANDs a restricted day of month with a restricted
day of week, where cron ORs them (so such a schedule is two triggers, the earlier wins).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class CronError(ValueError):
    """A schedule or time zone Kubernetes (or apscheduler) would not accept."""


def _zone(name: str | None) -> tzinfo:
    if not name:
        local = datetime.now().astimezone().tzinfo
        return local if local is not None else UTC
    if name.startswith(("/", ".")) or ".." in name:
        raise CronError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name!r}") from exc


def _day(text: str) -> int:
    word = text.lower()
    if word[:3] in DAYS and len(word) == 3:
        return DAYS.index(word[:3])
    if not word.isdigit() or int(word) > 7:
        raise CronError(f"day of week {text!r}: 0-7 (0 and 7 are Sunday) or SUN-SAT")
    return int(word) % 7


def _weekdays(field: str) -> str:
    """A cron day-of-week field as apscheduler's weekday names (its 0 is Monday)."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"day of week {item!r}: the step must be a positive number")
            step = int(step_text)
        if base in ("*", "?"):
            first, last = 0, 6
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _day(a), _day(b)
            last = 7 if b.strip() == "7" else last  # 5-7: Friday to Sunday
            if last < first:
                raise CronError(f"day of week {item!r}: the range ends before it begins")
        else:
            first = last = _day(base)
            if step_text:
                last = 6
        days |= {d % 7 for d in range(first, last + 1, step)}
    return ",".join(DAYS[d] for d in sorted(days))


class Schedule:
    """A CronJob's schedule in its time zone: the times it fires."""

    def __init__(self, schedule: str, time_zone: str | None = None) -> None:
        text = schedule.strip()
        if text.upper().startswith(("TZ=", "CRON_TZ=")):
            raise CronError("a time zone in the schedule is not supported: use spec.timeZone")
        if text.startswith("@"):
            if text.lower() not in MACROS:
                raise CronError(f"unknown macro {text!r}: " + ", ".join(MACROS))
            text = MACROS[text.lower()]
        fields = text.split()
        if len(fields) != 5:
            raise CronError(
                f"{len(fields)} fields; a schedule has 5: minute hour day month weekday"
            )
        minute, hour, dom, month, dow = fields
        zone = _zone(time_zone)
        weekdays = _weekdays(dow)
        dom = "*" if dom == "?" else dom
        try:
            if dom != "*" and weekdays != "*":  # cron ORs them; apscheduler would AND them
                self.triggers = [
                    CronTrigger(minute=minute, hour=hour, day=dom, month=month, timezone=zone),
                    CronTrigger(
                        minute=minute, hour=hour, month=month, day_of_week=weekdays, timezone=zone
                    ),
                ]
            else:
                self.triggers = [
                    CronTrigger(
                        minute=minute,
                        hour=hour,
                        day=dom,
                        month=month,
                        day_of_week=weekdays,
                        timezone=zone,
                    )
                ]
        except (ValueError, TypeError) as exc:
            raise CronError(str(exc)) from exc
        self.zone = zone
        if self.next_after(time.time()) is None:  # each pass would search the calendar for it
            raise CronError(f"{schedule!r} never fires (a day no month has, as 30 2)")

    def next_after(self, t: float) -> float | None:
        """The first time it fires strictly after ``t`` (Unix seconds)."""
        start = datetime.fromtimestamp(math.floor(t) + 1, self.zone)
        times = [x.get_next_fire_time(None, start) for x in self.triggers]
        found = [x.timestamp() for x in times if x is not None]
        return min(found, default=None)

    def latest(self, after: float, until: float) -> float | None:
        """The last time it fired in (``after``, ``until``], without walking every minute of a
        long outage: a window that grows back from ``until`` until it holds one."""
        window = 60.0
        while True:
            start = max(after, until - window)
            found = self.next_after(start)
            if found is not None and found <= until:
                while (later := self.next_after(found)) is not None and later <= until:
                    found = later
                return found
            if start <= after:
                return None
            window *= 4


def problems(schedule: str, time_zone: str | None) -> list[tuple[str, str]]:
    """Why Kubernetes would refuse this schedule and this time zone, each with its field (both
    at once: a bad zone does not hide a bad schedule, which is then read in UTC)."""
    out = []
    zone = time_zone
    if time_zone:
        try:
            _zone(time_zone)
        except CronError as exc:
            out.append(("spec.timeZone", str(exc)))
            zone = "UTC"
    try:
        Schedule(schedule, zone)
    except CronError as exc:
        out.append(("spec.schedule", str(exc)))
    return out
