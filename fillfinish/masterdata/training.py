"""Training and qualification of people (EU GMP 2.x, Annex 1 7.x/9.36, 21 CFR 211.25): what each user is trained on,
until when, entered by a trainer with their signature; and whether an operator may run a recipe at a moment.

Registry `training`, entry kind `training_recorded` {user, what, subject, trained_on, valid_until, signature}.
`what` is `procedure` (subject: an SOP id), `recipe` (subject: a recipe name), `gowning` (aseptic gowning) or
`mediafill` (participation in a passing media fill, e.g. one held before this system; subject: its reference).
Media-fill participation recorded by the quality module (registry `mediafill`) counts as well.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fillfinish.masterdata import MasterDataError
from fillfinish.masterdata.aps import mediafill_results
from fillfinish.masterdata.settings import MasterDataSettings
from fillfinish.masterdata.signing import authenticate, signature
from fillfinish.people.users import PeopleError, UserStore
from fillfinish.recipes.schema import Recipe
from fillfinish.record.registry import append_registry
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_registry import registry_of_type, signer
from fillfinish.record.vocabulary_registries import TrainingRecorded

REGISTRY = "training"
TRAINER_ROLES = ("supervisor", "qa")
WHATS = ("procedure", "recipe", "gowning", "mediafill")


@dataclass(frozen=True)
class TrainingRecord:
    """One training entry as read back from the registry."""

    seq: int
    user: str
    what: str
    subject: str
    trained_on: dt.date
    valid_until: dt.date
    trainer: str

    def valid_on(self, day: dt.date) -> bool:
        """Whether this training covers `day`."""
        return self.trained_on <= day <= self.valid_until

    def line(self) -> str:
        """One line for `training list`."""
        return (f"{self.user:<16} {self.what:<10} {self.subject:<20} {self.trained_on} .. {self.valid_until}  "
                f"by {self.trainer} (entry {self.seq})")


def records(store: RecordStore, user: str | None = None) -> list[TrainingRecord]:
    """Every training entry, optionally of one user, in write order."""
    out = []
    for row in registry_of_type(store, REGISTRY, TrainingRecorded):
        d = row.data
        if user is not None and d.user != user:
            continue
        out.append(TrainingRecord(row.seq, d.user, d.what, d.subject, dt.date.fromisoformat(d.trained_on),
                                  dt.date.fromisoformat(d.valid_until), signer(d.signature).user_id))
    return out


def add_training(store: RecordStore, user: str, what: str, subject: str, trained_on: dt.date,
                 valid_until: dt.date, trainer: str, password: str) -> TrainingRecord:
    """A trainer (supervisor or QA, not the trainee) records a training of an existing user, with signature."""
    label = f"training of {user} ({what} {subject})"
    if what not in WHATS:
        raise MasterDataError(f"{label}: --what '{what}' is not allowed; allowed: {', '.join(WHATS)}")
    if what == "gowning" and not subject:
        subject = "aseptic gowning"
    if not subject.strip():
        raise MasterDataError(f"{label}: --subject is required (an SOP id, a recipe name or a media-fill reference)")
    if valid_until < trained_on:
        raise MasterDataError(f"{label}: valid until {valid_until} is before the training on {trained_on}")
    try:
        UserStore(store).get(user)
    except PeopleError:
        raise MasterDataError(f"{label}: unknown user {user!r}; add the account first (`fillfinish user add`)") \
            from None
    account = authenticate(store, trainer, password, TRAINER_ROLES, f"enter {label}")
    if account.username == user:
        raise MasterDataError(f"enter {label}: a person cannot sign their own training; another trainer must")
    append_registry(store, REGISTRY, "training_recorded", {
        "user": user, "what": what, "subject": subject, "trained_on": trained_on.isoformat(),
        "valid_until": valid_until.isoformat(), "signature": signature(account, "trained", f"{what} {subject}")},
        account.username)
    return records(store, user)[-1]


def last_aseptic_pass(store: RecordStore, user: str, line_id: str | None = None) -> tuple[dt.date, str] | None:
    """(date, source) of the user's latest passing media-fill participation: a `mediafill` result naming them, or a
    `mediafill` training entry; None when there is none."""
    found: list[tuple[dt.date, str]] = []
    for r in mediafill_results(store):
        if r.passed and user in r.operators:
            found.append((r.result_at.date(), f"media fill {r.batch_id} (mediafill entry {r.seq})"))
    for t in records(store, user):
        if t.what == "mediafill":
            found.append((t.trained_on, f"media fill {t.subject} (training entry {t.seq})"))
    return max(found) if found else None


def qualification_problems(store: RecordStore, user: str, recipe: Recipe, day: dt.date,
                           settings: MasterDataSettings) -> tuple[list[str], dict[str, object]]:
    """What the operator lacks to run `recipe` on `day` (empty when qualified) and the evidence used."""
    mine = records(store, user)
    problems: list[str] = []
    evidence: dict[str, object] = {}

    def valid(what: str, subject: str | None) -> TrainingRecord | None:
        hits = [t for t in mine if t.what == what and (subject is None or t.subject == subject) and t.valid_on(day)]
        return hits[-1] if hits else None

    needed = [("recipe", recipe.recipe.name), ("gowning", None)] + [("procedure", p)
                                                                    for p in settings.required_procedures]
    for what, subject in needed:
        hit = valid(what, subject)
        label = f"{what} {subject}" if subject else what
        if hit is None:
            lapsed = [t for t in mine if t.what == what and (subject is None or t.subject == subject)]
            when = f" (lapsed {lapsed[-1].valid_until})" if lapsed else ""
            problems.append(f"operator {user} has no valid training on {label}{when}")
        else:
            evidence[label] = hit.seq
    if recipe.recipe.mode == "production":
        last = last_aseptic_pass(store, user)
        if last is None:
            problems.append(f"operator {user} has no passing media-fill participation (aseptic qualification)")
        else:
            until = last[0] + dt.timedelta(days=settings.operator_aps_period_days)
            if day > until:
                problems.append(f"operator {user}'s aseptic qualification lapsed on {until} (last passing media fill "
                                f"{last[0]}, {last[1]})")
            else:
                evidence["aseptic qualification"] = f"{last[0]} {last[1]}, valid until {until}"
    return problems, evidence
