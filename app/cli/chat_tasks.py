"""Chat tasks of the kinds people fine-tune an instruction model for, used by ``sculpt demo``
and the real-model benchmark (``bench.continual --model smollm2-135m``). Each task is a rule over
generated items, so held-out items were never trained on and a model scores there only if it learned
the rule:

- ``tickets``: a support message into one of four custom codes (``FIN``, ``ENG``, ``ACC``, ``SHP``);
- ``contacts``: a self-introduction into JSON ``{"name": ..., "city": ...}``;
- ``dates``: a date written out in words into ISO form (``2021-03-05``);
- ``dock``: a delivery note, then a question answered from it (the dock number).

Every record is ``{"messages": [user, assistant]}``, the service's own chat format.
"""

from __future__ import annotations

import json
import random

REAL_TASKS = ("tickets", "contacts", "dates", "dock")

_TICKETS = {
    "FIN": ["I was charged twice for {thing}.", "Why is there an extra fee for {thing}?",
            "Please refund {thing}, I cancelled it.", "My invoice for {thing} is wrong."],
    "ENG": ["The app crashes when I open {thing}.", "{thing} shows a blank page.",
            "I get an error every time I use {thing}.", "{thing} stopped loading after the update."],
    "ACC": ["I cannot log in to see {thing}.", "How do I change the email on {thing}?",
            "My password reset link for {thing} expired.", "Please delete my account and {thing}."],
    "SHP": ["{thing} has not arrived yet.", "The box with {thing} came damaged.",
            "Can you ship {thing} to another address?", "Where is my parcel with {thing}?"],
}
_THINGS = ["my subscription", "the blue jacket", "order 4411", "the family plan", "my last order", "the headphones",
           "the yearly plan", "the garden chair", "order 9120", "the desk lamp", "my gift card", "the coffee maker"]
_NAMES = ["Maria", "Tom", "Aisha", "Kenji", "Lena", "Omar", "Sofia", "Ravi", "Ines", "Piotr", "Chloe", "Diego",
          "Hana", "Lucas", "Zara", "Felix"]
_CITIES = ["Lisbon", "Oslo", "Cairo", "Lima", "Osaka", "Dublin", "Quito", "Porto", "Accra", "Hanoi", "Perth",
           "Turin"]
_INTROS = ["Hi, I'm {name} from {city}.", "Hello! My name is {name} and I live in {city}.",
           "{name} here, writing from {city}.", "Good morning, this is {name}, based in {city}."]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def _tickets(rng: random.Random) -> dict:
    code = rng.choice(sorted(_TICKETS))
    text = rng.choice(_TICKETS[code]).format(thing=rng.choice(_THINGS))
    return _chat(f"Route this support ticket to a team code (FIN, ENG, ACC or SHP): {text[0].upper()}{text[1:]}",
                 code)


def _contacts(rng: random.Random) -> dict:
    name, city = rng.choice(_NAMES), rng.choice(_CITIES)
    intro = rng.choice(_INTROS).format(name=name, city=city)
    return _chat(f"Extract the contact as JSON: {intro}", json.dumps({"name": name, "city": city}))


def _dates(rng: random.Random) -> dict:
    year, month, day = rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28)
    return _chat(f"Write this date in ISO format: {_MONTHS[month - 1]} {day}, {year}",
                 f"{year:04d}-{month:02d}-{day:02d}")


def _dock(rng: random.Random) -> dict:
    name, dock, day = rng.choice(_NAMES), rng.randint(1, 40), rng.choice(_DAYS)
    note = f"The delivery for {name} arrives on {day} at dock {dock}, before noon."
    return _chat(f"Note: {note}\nQuestion: At which dock does the delivery arrive? Answer with the number only.",
                 str(dock))


_MAKERS = {"tickets": _tickets, "contacts": _contacts, "dates": _dates, "dock": _dock}


def _chat(user: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def distinct_records(name: str, seed: int, count: int) -> list[dict]:
    """``count`` records of task ``name`` with distinct questions, drawn with ``seed``."""
    rng, seen, items = random.Random(f"real-{seed}-{name}"), set(), []
    for _ in range(50 * count):
        record = _MAKERS[name](rng)
        key = record["messages"][0]["content"]
        if key not in seen:
            seen.add(key)
            items.append(record)
            if len(items) == count:
                return items
    raise ValueError(f"task {name} cannot make {count} distinct items")
