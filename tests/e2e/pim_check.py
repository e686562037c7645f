#!/usr/bin/env python3
"""Checks mailvault's calendar and contact exports with third-party parsers
(python icalendar and vobject, the Debian packages).

  pim_check.py ics EXPORT ORIGINAL...   every component of the originals (the
      later file wins for the same UID and RECURRENCE-ID, as an import does) is
      in the export with the same properties, nothing else is; each VTIMEZONE
      once per TZID; calendar-level properties kept; vobject reads it too and
      expands the recurring stand-up correctly across the DST change.
  pim_check.py vcf EXPORT ORIGINAL      every card's properties (groups,
      parameters, values) survive.

Exits 1 with the first difference on stderr.
"""
import datetime
import sys

import icalendar
import vobject


def fail(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(1)


def props(comp):
    out = []
    for name, value in comp.property_items(recursive=True):
        out.append((name, value.to_ical() if hasattr(value, "to_ical") else str(value)))
    return out


def components(cal):
    found = {}
    for comp in cal.subcomponents:
        if comp.name in ("VEVENT", "VTODO", "VJOURNAL"):
            rid = comp.get("RECURRENCE-ID")
            key = (comp.name, str(comp.get("UID")), rid.to_ical() if rid is not None else None)
            found[key] = props(comp)
    return found


def check_ics(export_path, originals):
    data = open(export_path, "rb").read()
    cal = icalendar.Calendar.from_ical(data)
    tzids = [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")]
    if len(tzids) != len(set(tzids)):
        fail(f"VTIMEZONE repeated: {tzids}")
    want = {}
    first = None
    used_tz = set()
    for path in originals:
        orig = icalendar.Calendar.from_ical(open(path, "rb").read())
        first = first or orig
        want.update(components(orig))
        for comp in orig.walk():
            for _, value in comp.property_items(recursive=False):
                tzid = getattr(value, "params", {}).get("TZID")
                if tzid:
                    used_tz.add(str(tzid))
    if set(tzids) != used_tz:
        fail(f"time zones {sorted(tzids)}, want {sorted(used_tz)}")
    for name in ("CALSCALE", "METHOD", "X-WR-CALNAME", "X-WR-TIMEZONE", "X-WR-CALDESC"):
        if name in first and cal.get(name) != first.get(name):
            fail(f"calendar property {name}: {cal.get(name)!r}, want {first.get(name)!r}")
    got = components(cal)
    if set(got) != set(want):
        fail(f"components differ: missing {sorted(set(want) - set(got), key=str)}, "
             f"extra {sorted(set(got) - set(want), key=str)}")
    for key, p in want.items():
        if got[key] != p:
            fail(f"{key} changed:\n got {got[key]}\nwant {p}")
    leap = [c for c in cal.walk("VEVENT") if str(c["UID"]) == "leapday-birthday@google.com"]
    if leap and leap[0].decoded("DTSTART") != datetime.date(2024, 2, 29):
        fail("the 29 February all-day event moved")

    # A second, independent parser: vobject, with the recurrence expanded.
    vcal = vobject.readOne(data.decode("utf-8"))
    masters = [e for e in vcal.vevent_list
               if e.uid.value == "standup-4711@google.com" and not hasattr(e, "recurrence_id")]
    if masters:
        rs = masters[0].getrruleset()
        tz = masters[0].dtstart.value.tzinfo
        before = datetime.datetime(2026, 10, 21, 9, 30, tzinfo=tz)
        after = datetime.datetime(2026, 10, 26, 9, 30, tzinfo=tz)
        excluded = datetime.datetime(2026, 10, 23, 9, 30, tzinfo=tz)
        if before not in rs or after not in rs or excluded in rs:
            fail("the stand-up's occurrences (RRULE, EXDATE) are wrong")
        if before.utcoffset() != datetime.timedelta(hours=2) or after.utcoffset() != datetime.timedelta(hours=1):
            fail("the stand-up does not cross the DST change in Europe/Berlin")


def card_props(card):
    out = []
    for line in card.lines():
        params = sorted((k, tuple(v)) for k, v in line.params.items())
        out.append((line.group, line.name, tuple(params), line.value if isinstance(line.value, str) else repr(line.value)))
    return sorted(out, key=repr)


def check_vcf(export_path, original):
    got = list(vobject.readComponents(open(export_path, encoding="utf-8").read()))
    want = list(vobject.readComponents(open(original, encoding="utf-8").read()))
    if len(got) != len(want):
        fail(f"{len(got)} cards, want {len(want)}")
    for g, w in zip(got, want):
        if card_props(g) != card_props(w):
            fail(f"card {w.fn.value} changed:\n got {card_props(g)}\nwant {card_props(w)}")
        names = [l.name for l in g.lines()]
        if names.count("EMAIL") < 2 or names.count("TEL") < 2 or "PHOTO" not in names:
            fail(f"card {w.fn.value}: EMAIL/TEL/PHOTO lost")
        if not any(l.group for l in g.lines()):
            fail(f"card {w.fn.value}: item groups lost")


if __name__ == "__main__":
    kind, export, *originals = sys.argv[1:]
    if kind == "ics":
        check_ics(export, originals)
    elif kind == "vcf":
        check_vcf(export, originals[0])
    else:
        fail(f"unknown kind {kind}")
    print("ok")
