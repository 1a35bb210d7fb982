"""Chat tasks of the kinds people fine-tune an instruction model for, used by ``sculpt demo``
and the real-model benchmark (``bench.continual --model smollm2-135m``). Each task is a rule over
generated items, so held-out items were never trained on and a model scores there only if it learned
the rule:

- ``tickets``: a support message into one of four custom codes (``FIN``, ``ENG``, ``ACC``, ``SHP``);
- ``contacts``: a self-introduction into JSON ``{"name": ..., "city": ...}``;
- ``dates``: a date written out in words into ISO form (``2021-03-05``);
- ``dock``: a delivery note, then a question answered from it (the dock number).

The long stream (``LONG_TASKS``, a year of weekly updates in miniature) adds eight more, of other kinds:

- ``sentiment``: a product review into ``positive`` or ``negative`` (classification);
- ``topics``: a headline into one of four custom codes (``SPT``, ``TEC``, ``FOD``, ``TRV``);
- ``orders``: an order sentence into JSON ``{"product": ..., "quantity": ...}`` (extraction);
- ``past-tense``: a sentence rewritten in the past tense (rewriting);
- ``initials``: a full name into its initials (``M.L.``);
- ``reverse-words``: three words in reverse order;
- ``word-problems``: a two-number word problem, answered with the number (short reasoning);
- ``tool-calls``: a request into a tool call, JSON ``{"tool": ..., "arguments": {...}}``.

Every record is ``{"messages": [user, assistant]}``, the service's own chat format.
"""

from __future__ import annotations

import json
import random

REAL_TASKS = ("tickets", "contacts", "dates", "dock")
LONG_TASKS = (*REAL_TASKS, "sentiment", "topics", "orders", "past-tense", "initials", "reverse-words",
              "word-problems", "tool-calls")

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


_REVIEWS = {
    "positive": ["I love {thing}, it works perfectly.", "{thing} exceeded my expectations.",
                 "Great value, {thing} is exactly what I wanted.", "Five stars for {thing}, would buy again."],
    "negative": ["{thing} broke after two days.", "I regret buying {thing}, it is useless.",
                 "Terrible quality, {thing} fell apart.", "{thing} never worked, avoid it."],
}
_HEADLINES = {
    "SPT": ["{city} wins the cup final in extra time", "Record crowd in {city} for the marathon",
            "{city} signs a new striker for the season"],
    "TEC": ["{city} startup releases a faster phone chip", "New app from {city} translates speech offline",
            "{city} opens a lab for quantum computers"],
    "FOD": ["{city} bakery wins the bread prize", "Street food festival returns to {city}",
            "Chefs in {city} cook with seaweed this year"],
    "TRV": ["New train line links {city} to the coast", "Cheap flights to {city} this spring",
            "{city} named the best weekend trip in Europe"],
}
_PRODUCTS = ["lamp", "chair", "kettle", "notebook", "backpack", "mug", "towel", "pillow", "umbrella", "candle"]
_ORDER_FORMS = ["Please send {n} of the {product} to our office.", "We need {n} units of the {product}.",
                "Order {n} x {product} for the shop, thanks.", "Could you deliver {n} pieces of the {product}?"]
_VERBS = {"walks": "walked", "opens": "opened", "cooks": "cooked", "paints": "painted", "cleans": "cleaned",
          "writes": "wrote", "reads": "read", "buys": "bought", "sees": "saw", "finds": "found"}
_OBJECTS = ["the letter", "the door", "a cake", "the fence", "the kitchen", "a book", "the map", "a gift"]
_SURNAMES = ["Lopez", "Berg", "Nakamura", "Okafor", "Silva", "Novak", "Haddad", "Moreau", "Kim", "Rossi",
             "Walsh", "Jensen"]
_WORDS = ["red", "river", "stone", "cloud", "apple", "train", "glass", "forest", "music", "paper", "light",
          "window", "horse", "sugar"]
_PROBLEMS = [("A box holds {a} cups. How many cups are in {b} boxes?", lambda a, b: a * b),
             ("{name} had {a} apples and bought {b} more. How many apples does {name} have now?",
              lambda a, b: a + b),
             ("A shelf had {a} books and {b} were sold. How many books are left?", lambda a, b: a - b)]


def _sentiment(rng: random.Random) -> dict:
    label = rng.choice(sorted(_REVIEWS))
    text = rng.choice(_REVIEWS[label]).format(thing=rng.choice(_THINGS))
    return _chat(f"Is this review positive or negative? {text[0].upper()}{text[1:]}", label)


def _topics(rng: random.Random) -> dict:
    code = rng.choice(sorted(_HEADLINES))
    headline = rng.choice(_HEADLINES[code]).format(city=rng.choice(_CITIES))
    return _chat(f"Give the section code (SPT, TEC, FOD or TRV) for this headline: {headline}", code)


def _orders(rng: random.Random) -> dict:
    product, n = rng.choice(_PRODUCTS), rng.randint(2, 30)
    text = rng.choice(_ORDER_FORMS).format(n=n, product=product)
    return _chat(f"Extract the order as JSON: {text}", json.dumps({"product": product, "quantity": n}))


def _past_tense(rng: random.Random) -> dict:
    name, verb, thing = rng.choice(_NAMES), rng.choice(sorted(_VERBS)), rng.choice(_OBJECTS)
    return _chat(f"Rewrite in the past tense: {name} {verb} {thing}.", f"{name} {_VERBS[verb]} {thing}.")


def _initials(rng: random.Random) -> dict:
    first, last = rng.choice(_NAMES), rng.choice(_SURNAMES)
    return _chat(f"Write the initials of {first} {last}.", f"{first[0]}.{last[0]}.")


def _reverse_words(rng: random.Random) -> dict:
    words = rng.sample(_WORDS, 3)
    return _chat(f"Reverse the order of these words: {' '.join(words)}", " ".join(reversed(words)))


def _word_problems(rng: random.Random) -> dict:
    question, answer = rng.choice(_PROBLEMS)
    a, b = rng.randint(5, 12), rng.randint(2, 5)
    return _chat(f"{question.format(a=a, b=b, name=rng.choice(_NAMES))} Answer with the number only.",
                 str(answer(a, b)))


def _tool_calls(rng: random.Random) -> dict:
    if rng.random() < 0.5:
        city, day = rng.choice(_CITIES), rng.choice(_DAYS)
        request, call = (f"What will the weather be in {city} on {day}?",
                         {"tool": "get_weather", "arguments": {"city": city, "day": day}})
    else:
        name, hour = rng.choice(_NAMES), rng.randint(8, 17)
        request, call = (f"Book a meeting with {name} at {hour}:00.",
                         {"tool": "book_meeting", "arguments": {"person": name, "hour": hour}})
    return _chat(f"Answer with the tool call as JSON (tools: get_weather, book_meeting): {request}",
                 json.dumps(call))


_MAKERS = {"tickets": _tickets, "contacts": _contacts, "dates": _dates, "dock": _dock, "sentiment": _sentiment,
           "topics": _topics, "orders": _orders, "past-tense": _past_tense, "initials": _initials,
           "reverse-words": _reverse_words, "word-problems": _word_problems, "tool-calls": _tool_calls}


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
