"""What importing a pupil file from the MIS would change, worked out on the importing device before anything is
applied: a re-import is a diff, listed for the person to read first.

The same pupil is found again by UPN: the file's UPN gives the pupil id (``Device.pupil_id``, a keyed hash the
server cannot reverse), and the roster the device opens is keyed by pupil id. Each pupil of the file is then a
**joiner** (no such pupil yet), or one the school holds, with what differs: a **name** correction, a **class**
move (registration group or year), changed **details** (date of birth, SEN status, flags, dates); or a
**leaver** (a leaving date that has passed, or no longer in the file). A pupil the file says left before the
school ever held them is not imported.

The roster content these plans compare and write (docs/PROTOCOL.md 11.2): under the staff roster key, what any
member of staff needs to pick the pupil (``name``, ``class``, ``year``); under the sensitive roster key, the
rest (``upn``, ``legal_name``, ``dob``, ``sen``, ``flags``, ``admitted``, ``left``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from .mis import MisPupil

__all__ = ["STAFF_FIELDS", "SENSITIVE_FIELDS", "FLAG_LABELS", "roster_content", "Change", "ImportPlan", "plan_import"]

STAFF_FIELDS = ("name", "class", "year")
SENSITIVE_FIELDS = ("upn", "legal_name", "dob", "sen", "flags", "admitted", "left")
# the labels the staff app shows (and the demo writes); SEN K and E are flags too, for the same screens
FLAG_LABELS = {"sen_k": "SEN support", "sen_e": "EHC plan", "pupil_premium": "pupil premium", "eal": "EAL",
               "looked_after": "looked after"}
_NAME, _CLASS, _DETAILS = ("name",), ("class", "year"), ("legal_name", "dob", "sen", "flags", "admitted", "left")


def roster_content(pupil: MisPupil) -> tuple[dict, dict]:
    """The pupil's two roster entries' content: (staff, sensitive)."""
    flags = [FLAG_LABELS[f] for f, on in (("sen_k", pupil.sen_status == "K"), ("sen_e", pupil.sen_status == "E"),
                                          ("pupil_premium", pupil.pupil_premium), ("eal", pupil.eal),
                                          ("looked_after", pupil.looked_after)) if on]
    staff = {"name": pupil.name, "class": pupil.registration_group, "year": pupil.year_group}
    sensitive = {
        "upn": pupil.upn, "legal_name": f"{pupil.legal_forename} {pupil.legal_surname}",
        "dob": pupil.date_of_birth.isoformat(), "sen": pupil.sen_status, "flags": flags,
        "admitted": pupil.admission_date.isoformat() if pupil.admission_date else None,
        "left": pupil.leaving_date.isoformat() if pupil.leaving_date else None,
    }
    return staff, sensitive


@dataclass(frozen=True)
class Change:
    """One pupil's change: ``fields`` that differ, each as (before, after); ``name`` as staff know them."""

    pupil_id: bytes
    name: str
    fields: Mapping[str, tuple[object, object]] = field(default_factory=dict)
    pupil: MisPupil | None = None  # what the file says (None for a leaver no longer in the file)


@dataclass(frozen=True)
class ImportPlan:
    joiners: tuple[Change, ...]
    renamed: tuple[Change, ...]
    moved: tuple[Change, ...]
    details: tuple[Change, ...]
    leavers: tuple[Change, ...]
    already_left: tuple[MisPupil, ...]
    new_classes: tuple[str, ...]
    unchanged: int

    @property
    def empty(self) -> bool:
        return not (self.joiners or self.renamed or self.moved or self.details or self.leavers or self.new_classes)

    def lines(self) -> list[str]:
        """The plan for a person to read before applying it: counts, then each change."""
        out = [f"{len(self.joiners)} joining, {len(self.leavers)} leaving, {len(self.renamed)} name corrections, "
               f"{len(self.moved)} class moves, {len(self.details)} with changed details, {self.unchanged} unchanged"]
        if self.new_classes:
            out.append("new classes: " + ", ".join(self.new_classes))
        for title, changes in (("joining", self.joiners), ("leaving", self.leavers), ("name", self.renamed),
                               ("class", self.moved), ("details", self.details)):
            for c in changes:
                said = "; ".join(f"{f}: {_shown(b)} -> {_shown(a)}" for f, (b, a) in c.fields.items())
                out.append(f"  {title}: {c.name}{' (' + said + ')' if said else ''}")
        for p in self.already_left:
            out.append(f"  not imported (left {p.leaving_date}): {p.name}")
        return out


def _shown(value: object) -> str:
    if value is None or value == "":
        return "none"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def plan_import(current: Mapping[bytes, Mapping], incoming: Sequence[MisPupil], pupil_id: Callable[[str], bytes],
                classes: Iterable[str] = (), today: date | None = None) -> ImportPlan:
    """Compare the file's pupils with the roster this device opened (``Device.roster()``: pupil id -> fields).
    ``classes``: the labels of the school's classes now; ``today`` decides whether a leaving date has passed."""
    today = today or date.today()
    joiners, renamed, moved, details, leavers, already_left = [], [], [], [], [], []
    seen: set[bytes] = set()
    unchanged = 0
    for pupil in incoming:
        pid = pupil_id(pupil.upn)
        seen.add(pid)
        gone = pupil.leaving_date is not None and pupil.leaving_date <= today
        before = current.get(pid)
        if before is None:
            if gone:
                already_left.append(pupil)
            else:
                joiners.append(Change(pid, pupil.name, {}, pupil))
            continue
        staff, sensitive = roster_content(pupil)
        after = {**staff, **sensitive}
        diff = {f: (before.get(f), after[f]) for f in after if before.get(f) != after[f] and f != "upn"}
        if gone and not before.get("left"):
            leavers.append(Change(pid, pupil.name, {"left": (before.get("left"), after["left"])}, pupil))
            continue
        kinds = [(renamed, _NAME), (moved, _CLASS), (details, _DETAILS)]
        changed = False
        for bucket, names in kinds:
            part = {f: v for f, v in diff.items() if f in names}
            if part:
                bucket.append(Change(pid, pupil.name, part, pupil))
                changed = True
        unchanged += not changed
    for pid, before in current.items():
        if pid not in seen and not before.get("left"):
            leavers.append(Change(pid, str(before.get("name", "")), {"left": (None, today.isoformat())}))
    known = set(classes)
    new_classes = sorted({p.registration_group for p in incoming if p.registration_group
                          and p.registration_group not in known
                          and not (p.leaving_date is not None and p.leaving_date <= today)})
    by_name = lambda changes: tuple(sorted(changes, key=lambda c: (c.name, c.pupil_id)))  # noqa: E731
    return ImportPlan(by_name(joiners), by_name(renamed), by_name(moved), by_name(details), by_name(leavers),
                      tuple(sorted(already_left, key=lambda p: p.name)), tuple(new_classes), unchanged)
