"""Made-up words for the demo school: staff, pupils and the text of their concerns, from small word lists.

Everything here is invented. The names are built from made-up nature surnames so that no combination
is anyone's; the narratives are short, plain and deliberately mild. Nothing is ever taken from real
records.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

__all__ = ["StaffSpec", "class_labels", "staff_plan", "pupil_names", "concern_plan", "follow_up_plan"]

TREES = ("Alder", "Birch", "Cedar", "Elm", "Hazel", "Holly", "Juniper", "Larch", "Maple", "Oak", "Rowan", "Willow",
         "Yew", "Aspen", "Beech", "Cherry")
YEARS = ("Reception", "Year 1", "Year 2", "Year 3", "Year 4", "Year 5", "Year 6")

PUPIL_FIRST = ("Ada", "Bram", "Cleo", "Dara", "Eli", "Faye", "Gus", "Hana", "Ines", "Jory", "Kit", "Lior", "Maya",
               "Nell", "Otis", "Pip", "Quinn", "Rafe", "Sami", "Tess", "Uma", "Vik", "Wren", "Yara", "Zeb", "Alba",
               "Bo", "Cass", "Dex", "Edie", "Finn", "Greta", "Hal", "Isla", "Juno", "Kai", "Lark", "Milo", "Nia",
               "Odi", "Priya", "Remy", "Sol", "Tam", "Una", "Vida", "Wynn", "Arlo")
PUPIL_LAST = ("Ashcombe", "Brackenridge", "Cloudsley", "Dunmere", "Elderwick", "Fallowfield", "Greythorn",
              "Hollowbrook", "Ivyhurst", "Juniperdale", "Kestrelby", "Larkspur", "Mossgrove", "Nettlefold",
              "Oakenshaw", "Pebblecombe", "Quarrington", "Rookwood", "Sedgemoor", "Thistlewood", "Underhill",
              "Varleigh", "Willowmere", "Yarrowby", "Amberlea", "Birchcote", "Fernleigh", "Harebell", "Marshwell",
              "Brambleford", "Coldharbour", "Dovecote", "Emberton", "Foxglove", "Gorsefield", "Heatherby")
STAFF_FIRST = ("Imogen", "Tobias", "Harriet", "Ravi", "Morag", "Declan", "Sunita", "Gideon", "Philippa", "Lucian",
               "Bronwen", "Amir", "Cressida", "Owain", "Delphine", "Tariq", "Rosalind", "Caspian", "Yvette",
               "Leopold", "Ngozi", "Fergus", "Marisol", "Barnaby", "Ottilie", "Hamish", "Zainab", "Crispin",
               "Annika", "Ewan", "Perpetua", "Idris", "Saffron", "Magnus", "Henrietta", "Kwame", "Lavinia",
               "Rufus", "Ingrid", "Jethro", "Clementine", "Osric", "Aurelia", "Dorian", "Beatrix")
STAFF_LAST = ("Starling", "Quillfeather", "Ravensworth", "Tumbledown", "Wickersham", "Pennyroyal", "Gravelbeck",
              "Inkwell", "Lanternby", "Mapleshaw", "Nightingale-Crewe", "Orchardson", "Puddlecombe", "Ridgeway-Holt",
              "Saltmarsh", "Tidewell", "Vellacott", "Whitlowe", "Yeovilton-Brae", "Ambergate", "Bellhanger",
              "Copperthwaite", "Dewhollow", "Eastcombe", "Flintridge", "Glasswick", "Hollingmoor", "Kettlewell",
              "Lindenhall", "Mistlethorpe", "Northwold", "Oxenholme", "Pinecroft", "Quenby", "Rushmere")

PLACES = ("the playground", "the lunch hall", "the library corner", "the cloakroom", "the classroom",
          "the field by the trim trail", "the school gate at pick-up", "the PE changing area",
          "the corridor outside the hall", "breakfast club")
TIMES = ("Before registration", "During morning break", "At lunchtime", "During the maths lesson",
         "At the end of the day", "During PE", "In the afternoon", "During the reading session")
LESSONS = ("maths", "phonics", "the science lesson", "art", "the reading session", "PE", "assembly", "topic work")
TOPICS = ("a falling-out with friends", "recent lateness", "a hospital appointment next week", "homework",
          "a change in medication", "sleeping badly", "a new baby at home", "the school trip")

# (kind, category, weight, who may write it, sentences: {n} name, {p} peer, {t} time, {l} place, {s} lesson)
KINDS = (
    ("behaviour_incident", "behaviour_pp", 5, "class", "{t}, {n} pushed {p} over in {l} after an argument about a "
     "football. {p} was not hurt and was checked by a first aider."),
    ("behaviour_incident", "behaviour_vp", 5, "class", "{t}, {n} called {p} unkind names in {l} and did not stop "
     "when asked."),
    ("behaviour_incident", "behaviour_va", 3, "class", "{t}, {n} shouted at the adult on duty in {l} and refused "
     "to follow instructions."),
    ("behaviour_incident", "behaviour_dm", 3, "class", "{t}, {n} deliberately snapped a ruler and scribbled on a "
     "classroom display."),
    ("behaviour_incident", "behaviour_th", 2, "class", "{t}, {n} was seen taking {p}'s snack from a bag in {l}. It "
     "was returned."),
    ("behaviour_incident", "behaviour_db", 6, "class", "{n} repeatedly called out and left their seat during {s}, "
     "stopping the group from working."),
    ("behaviour_incident", "low_level_behaviour", 8, "class", "{n} was off task and chatting during {s} after two "
     "reminders."),
    ("general_note", "positive_behaviour", 6, "class", "{n} helped {p}, who was upset in {l}, and fetched an adult "
     "without being asked."),
    ("safeguarding_concern", "neglect", 4, "any", "{t}, {n} arrived hungry and in the same uniform as last week. "
     "Said there was no breakfast at home."),
    ("safeguarding_concern", "bullying", 4, "any", "{p} told the adult on duty that {n} has been left out of games "
     "and called names by older children in {l} for several days."),
    ("safeguarding_concern", "cyberbullying", 2, "any", "{n} said that messages about them are being shared in an "
     "online group chat by children in another class."),
    ("safeguarding_concern", "online_safety", 3, "any", "{n} mentioned playing an online game late at night and "
     "chatting with people they have never met."),
    ("safeguarding_concern", "mental_health", 4, "any", "{n} seemed withdrawn and tearful during {s} and said they "
     "have been worrying a lot and not sleeping well."),
    ("safeguarding_concern", "attendance", 3, "any", "{n} has been late four times in two weeks; today arrived at "
     "9:40 looking tired."),
    ("safeguarding_concern", "young_carer", 2, "any", "{n} said they help look after a younger sibling most "
     "evenings because a parent is unwell."),
    ("safeguarding_concern", "family_breakdown", 2, "any", "{n} said their parents have separated and they now move "
     "between two homes during the week."),
    ("safeguarding_concern", "health_welfare", 2, "any", "{n} complained of toothache for the third day running and "
     "said they have not seen a dentist."),
    ("safeguarding_concern", "domestic_abuse", 2, "any", "{n} said there was a lot of shouting at home last night "
     "and that they hid in their bedroom."),
    ("safeguarding_concern", "physical_abuse", 2, "any", "During {s}, a bruise about the size of a coin was noticed "
     "on {n}'s upper arm. When asked, {n} said they did not want to talk about it."),
    ("safeguarding_concern", "self_harm", 1, "any", "{n} was seen with scratches on their forearm in {l} and pulled "
     "their sleeve down when an adult noticed."),
    ("safeguarding_concern", "emotional_abuse", 1, "any", "{n} said an adult at home often tells them they are "
     "useless."),
    ("sen_note", "sen", 6, "sen", "{n} found it hard to start the task in {s}; a visual timetable and instructions "
     "given one step at a time helped."),
    ("sen_note", "sen", 4, "sen", "{n} used ear defenders in {l} and settled after five minutes."),
    ("parental_contact", "attendance", 3, "office", "Phoned {n}'s parent about {o}. They were supportive and will "
     "talk with {n} at home."),
    ("parental_contact", "health_welfare", 3, "office", "{n}'s carer came in at pick-up to say {n} has been worried "
     "about {o}."),
    ("parental_contact", "pastoral_other", 3, "office", "Met {n}'s parent after school to talk about {o}; agreed to "
     "speak again in two weeks."),
    ("general_note", "friendship", 3, "any", "{n} has been spending break times alone since a falling-out with {p}."),
    ("general_note", "bereavement", 1, "any", "{n}'s grandparent died last week; {n} asked for time in the quiet "
     "room."),
    ("sharing_decision", "early_help", 2, "safeguarding", "Reviewed recent concerns about {n} at the weekly "
     "safeguarding meeting."),
)
CHILD_WORDS = ("I don't want to talk about it.", "It happens a lot.", "I'm fine, I'm just tired.",
               "Can I stay in at break?", "I didn't have breakfast.", "Nobody plays with me.")
ACTIONS = ("Check in with {n} each morning this week", "Phone {n}'s parent to arrange a meeting",
           "Add {n} to the nurture group list", "Ask the school nurse to see {n}",
           "Review {n}'s attendance at the end of the month")
COMMENTS = ("Spoke with {n} at lunchtime; seemed brighter.",
            "Class teacher will keep an eye on this over the next week.",
            "Parent contacted; they were already aware and are supportive.",
            "Discussed at the weekly safeguarding meeting; keep monitoring.")
CLOSING = ("No further concerns after two weeks of monitoring.", "Resolved with the family; nothing more to do.",
           "Early help support is now in place.")
AWAITING = ("Waiting for a call back from the early help team.", "Waiting to hear from the family.")


@dataclass(frozen=True)
class StaffSpec:
    login: str
    name: str
    roles: tuple[str, ...]
    job: str
    class_label: str | None = None


def class_labels(count: int) -> list[str]:
    """``count`` class names: two per year group from Reception, each named after a tree."""
    if not 1 <= count <= len(TREES):
        raise ValueError(f"the demo has 1 to {len(TREES)} classes, not {count}")
    return [f"{YEARS[min(i // 2, len(YEARS) - 1)]} {TREES[i]}" for i in range(count)]


def staff_plan(rng: random.Random, count: int, classes: list[str]) -> list[StaffSpec]:
    """Every role, founder first: the DSL (admin and safeguarding), a teacher per class, a SENCo, the office,
    a teaching assistant; then the head, deputy DSLs, IT, and more assistants, lunchtime and club staff."""
    core = 4 + len(classes)
    if count < core:
        raise ValueError(f"{len(classes)} classes need at least {core} staff, not {count}")
    names = iter(rng.sample([f"{f} {s}" for f in STAFF_FIRST for s in STAFF_LAST], count))

    def person(login: str, roles: tuple[str, ...], job: str, label: str | None = None) -> StaffSpec:
        return StaffSpec(login, next(names), roles, job, label)

    plan = [person("dsl", ("admin", "safeguarding"), "Designated safeguarding lead")]
    plan += [person(f"teacher-{c.split()[-1].lower()}", ("teacher",), f"Class teacher, {c}", c) for c in classes]
    plan += [person("senco", ("sen",), "SENCo"), person("office", ("admin",), "Office manager"),
             person("ta-01", ("contributor",), "Teaching assistant")]
    extras = [("head", ("safeguarding",), "Headteacher"), ("deputy-1", ("safeguarding",), "Deputy DSL"),
              ("deputy-2", ("safeguarding",), "Deputy DSL"), ("it", ("admin",), "IT technician")]
    for login, roles, job in extras[: count - len(plan)]:
        plan.append(person(login, roles, job))
    jobs = (("ta", "Teaching assistant"), ("lunch", "Lunchtime supervisor"), ("ta", "Teaching assistant"),
            ("club", "Breakfast and after-school club"))
    n = {"ta": 1, "lunch": 0, "club": 0}
    while len(plan) < count:
        prefix, job = jobs[len(plan) % len(jobs)]
        n[prefix] += 1
        plan.append(person(f"{prefix}-{n[prefix]:02d}", ("contributor",), job))
    return plan


def pupil_names(rng: random.Random, count: int) -> list[str]:
    every = [f"{f} {s}" for f in PUPIL_FIRST for s in PUPIL_LAST]
    if count > len(every):
        raise ValueError(f"the demo has at most {len(every)} pupils, not {count}")
    return rng.sample(every, count)


def _when(rng: random.Random, today: dt.date) -> str:
    day = today - dt.timedelta(days=rng.randint(1, 300))
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return f"{day.isoformat()}T{rng.randint(8, 15):02d}:{rng.choice((0, 10, 15, 20, 30, 40, 45, 50)):02d}"


def concern_plan(rng: random.Random, subject: tuple[str, str], peer: tuple[str, str], today: dt.date) -> dict:
    """One concern as ``{"writer": who may write it, "record": the record}``; pupils as (id hex, first name)."""
    kind, category, _, writer, text = rng.choices(KINDS, weights=[k[2] for k in KINDS])[0]
    words = {"n": subject[1], "p": peer[1], "t": rng.choice(TIMES), "l": rng.choice(PLACES),
             "s": rng.choice(LESSONS), "o": rng.choice(TOPICS)}
    record: dict = {"kind": kind, "category": category, "occurred_at": _when(rng, today),
                    "observed": text.format(**words), "pupils": [{"pupil": subject[0], "role": "subject"}]}
    if "{p}" in text and peer[0] != subject[0]:
        role = "victim" if category in ("behaviour_pp", "behaviour_vp", "behaviour_th") else "witness"
        record["pupils"].append({"pupil": peer[0], "role": role})
    if rng.random() < 0.6:
        record["location"] = words["l"][4:] if words["l"].startswith("the ") else words["l"]
    if kind == "safeguarding_concern":
        if rng.random() < 0.5:
            record["child_words"] = rng.choice(CHILD_WORDS)
        if rng.random() < 0.4:
            record["immediate_action"] = "Reassured the child and passed this to the DSL straight away."
        if rng.random() < 0.3:
            record["opinion"] = "This seems out of character; worth watching over the next few days."
    if category == "physical_abuse":
        record["body_map"] = [{"pupil": subject[0], "side": "front", "x": 300, "y": 260, "type": "bruise",
                               "region": "upper arm", "size_mm": 20, "colour": "blue"}]
    if kind == "sharing_decision":
        shared = rng.random() < 0.7
        record["sharing"] = {
            "shared": shared,
            "with": "the local early help team",
            "what": "attendance pattern and recent notes about tiredness",
            "lawful_basis": "public_task",
            "reason": "To offer the family early help; the parent agreed." if shared
            else "Not shared for now: the family is already working with the school on this.",
        }
        record["decision"] = {"decision": "refer_early_help" if shared else "monitor",
                              "rationale": "Several low-level concerns over a term."}
    return {"writer": writer, "record": record}


def follow_up_plan(rng: random.Random, name: str, kind: str, today: dt.date, owner: str) -> list[tuple[str, dict]]:
    """Events a safeguarding lead might add to a concern: (type, body) in order, possibly none."""
    chance = {"safeguarding_concern": 0.75, "sharing_decision": 0.9, "behaviour_incident": 0.2}.get(kind, 0.1)
    if rng.random() >= chance:
        return []
    steps: list[tuple[str, dict]] = [("assigned", {"assignee": owner})]
    if rng.random() < 0.6:
        due = today + dt.timedelta(days=rng.randint(-60, 20))
        steps.append(("action_added", {"action": {"text": rng.choice(ACTIONS).format(n=name), "owner": owner,
                                                  "due": due.isoformat()}}))
    if rng.random() < 0.7:
        steps.append(("comment", {"text": rng.choice(COMMENTS).format(n=name)}))
    end = rng.random()
    if end < 0.55:
        steps.append(("status_changed", {"status": "closed", "note": rng.choice(CLOSING)}))
    elif end < 0.75:
        steps.append(("status_changed", {"status": "awaiting", "note": rng.choice(AWAITING)}))
    return steps
