"""An alert's summary in the reader's language, from the sentence's id and the numbers and names it needs.

A rule stores two things when it raises an alert: the English summary (the record the API, the webhook
and the CSV export keep) and its parameters (`{"id": "probing", "n": 7, "limit": 5}`). Whoever shows
the alert to a person (the pages, the departure report, the security mail) turns the parameters into a
sentence with the reader's catalogue, counts through `ngettext` (Russian has three plural forms). An
alert raised before its parameters were stored, or whose parameters do not fit its sentence, is shown
with its stored English summary.

Kept in core so the rules (alerts), the report (services), the mail renderer and the pages share one
table; each caller passes its own translations (Flask-Babel's for a request, the mail's per recipient).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from vault.core.languages import N_


class Catalogue(Protocol):
    """What a gettext translations object gives (babel's `Translations`, `NullTranslations`)."""

    def gettext(self, message: str) -> str: ...

    def ngettext(self, singular: str, plural: str, n: int) -> str: ...


# Kinds of place a new_place alert names, and the weekdays an outside_hours alert names.
PLACE_KINDS: dict[str, str] = {"address": N_("address"), "named place": N_("named place"),
                               "declared place": N_("declared place")}
WEEKDAYS: tuple[str, ...] = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"),
                             N_("Saturday"), N_("Sunday"))


def _many_customers(t: Catalogue, p: Mapping[str, Any]) -> str:
    return t.ngettext("Files of %(n)s different customer opened within 24 hours (more than %(limit)s).",
                      "Files of %(n)s different customers opened within 24 hours (more than %(limit)s).",
                      int(p["n"])) % {"n": p["n"], "limit": p["limit"]}


def _volume_spike(t: Catalogue, p: Mapping[str, Any]) -> str:
    return t.ngettext("%(n)s view today, against a usual %(median)s a day over the last %(days)s days.",
                      "%(n)s views today, against a usual %(median)s a day over the last %(days)s days.",
                      int(p["n"])) % {"n": p["n"], "median": p["median"], "days": p["days"]}


def _outside_hours(t: Catalogue, p: Mapping[str, Any]) -> str:
    when = t.gettext(WEEKDAYS[int(p["weekday"])]) + " " + str(p["time"])
    return t.gettext("Files opened outside working hours (%(when)s).") % {"when": when}


def _outside_hours_reveal(t: Catalogue, p: Mapping[str, Any]) -> str:
    when = t.gettext(WEEKDAYS[int(p["weekday"])]) + " " + str(p["time"])
    return t.gettext("Contacts revealed outside working hours (%(when)s).") % {"when": when}


def _new_place(t: Catalogue, p: Mapping[str, Any]) -> str:
    places = "; ".join(f"{t.gettext(PLACE_KINDS[kind])}: {value}" for kind, value in p["places"])
    return t.gettext("Files opened from a place not seen before for this person (%(places)s).") % {"places": places}


def _new_place_reveal(t: Catalogue, p: Mapping[str, Any]) -> str:
    places = "; ".join(f"{t.gettext(PLACE_KINDS[kind])}: {value}" for kind, value in p["places"])
    return t.gettext("Contacts revealed from a place not seen before for this person (%(places)s).") % {
        "places": places}


def _departing_view(t: Catalogue, p: Mapping[str, Any]) -> str:
    return t.gettext("A grade-%(grade)s file was opened by a person on notice.") % {"grade": p["grade"]}


def _departing_request(t: Catalogue, p: Mapping[str, Any]) -> str:
    return t.gettext("A person on notice asked to borrow a grade-%(grade)s file.") % {"grade": p["grade"]}


def _probing(t: Catalogue, p: Mapping[str, Any]) -> str:
    return t.ngettext("%(n)s refused attempt within an hour (the limit is %(limit)s).",
                      "%(n)s refused attempts within an hour (the limit is %(limit)s).",
                      int(p["n"])) % {"n": p["n"], "limit": p["limit"]}


def _quotas_exhausted(t: Catalogue, p: Mapping[str, Any]) -> str:
    return t.ngettext("The view quota of %(n)s document was used up today.",
                      "The view quotas of %(n)s documents were used up today.",
                      int(p["n"])) % {"n": p["n"]}


def _notice(t: Catalogue, p: Mapping[str, Any]) -> str:
    gave = t.gettext("%(name)s gave notice; last working day %(day)s.") % {"name": p["name"], "day": p["day"]}
    customers = t.ngettext("%(n)s customer to hand over", "%(n)s customers to hand over",
                           int(p["customers"])) % {"n": p["customers"]}
    loans = t.ngettext("%(n)s open loan", "%(n)s open loans", int(p["loans"])) % {"n": p["loans"]}
    return t.gettext("%(gave)s %(customers)s, %(loans)s.") % {"gave": gave, "customers": customers, "loans": loans}


def _directory_hour(t: Catalogue, p: Mapping[str, Any]) -> str:
    return t.ngettext("%(name)s read or looked up %(n)s different customer within an hour (more than %(limit)s).",
                      "%(name)s read or looked up %(n)s different customers within an hour (more than %(limit)s).",
                      int(p["n"])) % {"name": p["name"], "n": p["n"], "limit": p["limit"]}


def _directory_day(t: Catalogue, p: Mapping[str, Any]) -> str:
    return t.ngettext("%(name)s read or looked up %(n)s different customer within 24 hours (more than %(limit)s).",
                      "%(name)s read or looked up %(n)s different customers within 24 hours (more than %(limit)s).",
                      int(p["n"])) % {"name": p["name"], "n": p["n"], "limit": p["limit"]}


def _outside_book(t: Catalogue, p: Mapping[str, Any]) -> str:
    return t.ngettext("%(name)s, on notice, read or looked up %(n)s customer outside their own book.",
                      "%(name)s, on notice, read or looked up %(n)s customers outside their own book.",
                      int(p["n"])) % {"name": p["name"], "n": p["n"]}


def _outside_book_reveals(t: Catalogue, p: Mapping[str, Any]) -> str:
    within = t.ngettext("within %(days)s day", "within %(days)s days", int(p["days"])) % {"days": p["days"]}
    return t.ngettext("%(name)s revealed the contacts of %(n)s customer outside their own book %(within)s "
                      "(more than %(limit)s).",
                      "%(name)s revealed the contacts of %(n)s customers outside their own book %(within)s "
                      "(more than %(limit)s).",
                      int(p["n"])) % {"name": p["name"], "n": p["n"], "within": within, "limit": p["limit"]}


def _crafted_file(t: Catalogue, p: Mapping[str, Any]) -> str:
    return t.gettext("%(name)s uploaded “%(title)s”, and the process drawing its pages sent what a drawing never "
                     "sends: the file may have been built to take over the reader.") % {"name": p["name"],
                                                                                         "title": p["title"]}


SENTENCES: dict[str, Callable[[Catalogue, Mapping[str, Any]], str]] = {
    "many_customers": _many_customers,
    "volume_spike": _volume_spike,
    "outside_hours": _outside_hours,
    "outside_hours_reveal": _outside_hours_reveal,
    "new_place": _new_place,
    "new_place_reveal": _new_place_reveal,
    "departing_view": _departing_view,
    "departing_request": _departing_request,
    "probing": _probing,
    "quotas_exhausted": _quotas_exhausted,
    "notice": _notice,
    "directory_hour": _directory_hour,
    "directory_day": _directory_day,
    "outside_book": _outside_book,
    "outside_book_reveals": _outside_book_reveals,
    "crafted_file": _crafted_file,
}


def sentence(summary: str, params: Mapping[str, Any] | None, translations: Catalogue) -> str:
    """The summary in `translations`' language; the stored English `summary` when there are no
    parameters (an older alert) or they do not fit the sentence they name."""
    if not params:
        return summary
    wording = SENTENCES.get(str(params.get("id", "")))
    if wording is None:
        return summary
    try:
        return wording(translations, params)
    except (KeyError, IndexError, TypeError, ValueError):
        return summary
