"""Synthetic ViGGO-style rows: a sentence and its meaning representation (GEM/viggo).

Each row is ``{"target": sentence, "meaning_representation": MR}`` with GEM/viggo's field
names. The MR lists attributes in the canonical order of ``ATTRIBUTES`` and list values in
the game's own order, as the dataset does; ``request_attribute`` asks about one attribute
with empty brackets (``platforms[]``). Sentences come from a few templates per function
whose slot phrases are drawn from several wordings each, about games of a catalogue with
consistent facts (``viggo_pools.py``); every slot value of the MR is said in the sentence.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence, Union

from ftui.presets.synth.viggo_pools import (
    ASK, EXPLAIN_ADJ, GENRE_WORDS, LEADS, NEGATIVE_SPECIFIERS, OPINION_VERBS,
    POSITIVE_SPECIFIERS, RATING_ADJ, REVIEWS, SPECIFIERS, VERIFY, VERIFY_YES_NO, VIEW_ADJ,
    VIEW_PP, Game, catalogue,
)
from ftui.core.tasks.viggo import ATTRIBUTES, FUNCTIONS

N = 1500
SEED = 20_240_608

FUNCTION_WEIGHTS: dict[str, int] = {
    "inform": 30, "request": 8, "give_opinion": 11, "confirm": 8, "verify_attribute": 10,
    "suggest": 9, "request_explanation": 8, "recommend": 9, "request_attribute": 7,
}
assert tuple(FUNCTION_WEIGHTS) == FUNCTIONS

Value = Union[str, tuple[str, ...]]
Slots = dict[str, Value]


def render_mr(function: str, slots: Slots) -> str:
    """``function(attr[value], attr[v1, v2], ...)`` with attributes in canonical order."""
    parts = []
    for attribute in ATTRIBUTES:
        if attribute in slots:
            value = slots[attribute]
            text = ", ".join(value) if isinstance(value, tuple) else value
            parts.append(f"{attribute}[{text}]")
    return f"{function}({', '.join(parts)})"


def facts(game: Game) -> Slots:
    """Every attribute the catalogue knows about ``game`` (no specifier)."""
    yn = ("no", "yes")
    slots: Slots = {"name": game.name}
    if game.year is None:
        slots["exp_release_date"] = game.expected
    else:
        slots["release_year"] = str(game.year)
        slots["rating"] = game.rating
    slots.update({
        "developer": game.developer, "esrb": game.esrb, "genres": game.genres,
        "player_perspective": game.perspective, "platforms": game.platforms,
        "available_on_steam": yn[game.steam], "has_linux_release": yn[game.linux],
        "has_mac_release": yn[game.mac], "has_multiplayer": yn[game.multiplayer],
    })
    if "PC" not in game.platforms:  # Steam, Linux and Mac only make sense for PC games
        for attribute in ("available_on_steam", "has_linux_release", "has_mac_release"):
            del slots[attribute]
    return slots


# --- wording -----------------------------------------------------------------------------


def and_list(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def a(phrase: str) -> str:
    vowel = phrase[:1].lower() in "aeiou" and not phrase.lower().startswith(("uni", "use"))
    return ("an " if vowel or phrase.startswith(("MMORPG", "M ")) else "a ") + phrase


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _genres(slots: Slots) -> str:
    value = slots["genres"]
    assert isinstance(value, tuple)
    return and_list([GENRE_WORDS.get(g, g) for g in value])


def _platforms(slots: Slots) -> str:
    value = slots["platforms"]
    assert isinstance(value, tuple)
    return and_list(value)


def np(rng: random.Random, slots: Slots, attrs: Sequence[str], *, many: bool = False) -> str:
    """A noun phrase naming games with ``attrs``: "excellent first-person shooter from 2007"."""
    pre: list[str] = []
    post: list[str] = []
    s = slots
    if "specifier" in attrs:
        pre.append(str(s["specifier"]))
    if "rating" in attrs:
        pre.append(rng.choice(RATING_ADJ[str(s["rating"])]))
    if "release_year" in attrs:
        if rng.random() < 0.3:
            pre.append(str(s["release_year"]))
        else:
            post.append(rng.choice(("from {}", "released in {}", "that came out in {}"))
                        .format(s["release_year"]))
    if "developer" in attrs:
        post.append(rng.choice(("by {}", "made by {}", "developed by {}")).format(s["developer"]))
    if "player_perspective" in attrs:
        if rng.random() < 0.6:
            pre.append(rng.choice(VIEW_ADJ[str(s["player_perspective"])]))
        else:
            post.append("played " + rng.choice(VIEW_PP[str(s["player_perspective"])]))
    if "genres" in attrs:
        pre.append(_genres(s))
    if "exp_release_date" in attrs:
        post.append(rng.choice(("coming out in {}", "expected in {}", "due out in {}"))
                    .format(s["exp_release_date"]))
    if "platforms" in attrs:
        post.append(rng.choice(("on {}", "for {}", "available on {}")).format(_platforms(s)))
    if "esrb" in attrs:
        post.append(f"rated {s['esrb']}")
    if "has_multiplayer" in attrs:
        yes = s["has_multiplayer"] == "yes"
        post.append(rng.choice(("with multiplayer", "with a multiplayer mode") if yes else
                               ("without multiplayer", "with no multiplayer")))
    for attribute, what in (("available_on_steam", "on Steam"),
                            ("has_linux_release", "on Linux"), ("has_mac_release", "on Mac")):
        if attribute in attrs:
            post.append(("available " if s[attribute] == "yes" else "not available ") + what)
    text = " ".join(pre + ["games" if many else "game"])
    for i, phrase in enumerate(post):  # prepositions follow on; other modifiers get a comma
        text += " " + phrase if i == 0 or phrase.startswith(_FLOWING) else ", " + phrase
    return text


_FLOWING = ("from ", "by ", "on ", "for ", "with ", "without ", "made by", "developed by",
            "released in", "that came")


def predicates(rng: random.Random, slots: Slots, attrs: Sequence[str]) -> list[str]:
    """Verb phrases for "It ...": "came out in 2007", "is available on PC and Xbox"."""
    s, out = slots, []
    future = "exp_release_date" in s
    will = "will be" if future else "is"
    for attribute in attrs:
        v = s.get(attribute, "")
        yes = v == "yes"
        if attribute == "release_year":
            out.append(rng.choice(("came out in {}", "was released in {}")).format(v))
        elif attribute == "exp_release_date":
            out.append(rng.choice(("is expected to release in {}", "is coming out in {}",
                                   "is scheduled for release in {}")).format(v))
        elif attribute == "developer":
            out.append(rng.choice(("was developed by {}", "was made by {}",
                                   "comes from {}")).format(v))
        elif attribute == "esrb":
            out.append(rng.choice(("is rated {}", "has an ESRB rating of {}")).format(v))
        elif attribute == "rating":
            out.append(f"{rng.choice(('received', 'got'))} {rng.choice(REVIEWS[str(v)])} "
                       "reviews")
        elif attribute == "genres":
            out.append(f"is {a(_genres(s))} game")
        elif attribute == "player_perspective":
            out.append(f"{will} played " + rng.choice(VIEW_PP[str(v)]))
        elif attribute == "platforms":
            out.append(rng.choice((f"{will} available on {{}}", "can be played on {}"))
                       .format(_platforms(s)))
        elif attribute == "available_on_steam":
            out.append(f"{will} available on Steam" if yes else
                       rng.choice(("isn't available on Steam", "can't be found on Steam")))
        elif attribute == "has_linux_release":
            out.append(rng.choice(("has a Linux release", "runs on Linux")) if yes else
                       rng.choice(("has no Linux version", "isn't available on Linux")))
        elif attribute == "has_mac_release":
            out.append(rng.choice(("has a Mac version", "is available for Mac")) if yes else
                       rng.choice(("has no Mac release", "isn't available on Mac")))
        elif attribute == "has_multiplayer":
            out.append(rng.choice(("supports multiplayer", "has a multiplayer mode",
                                   "can be played with friends online")) if yes else
                       rng.choice(("is single-player only", "doesn't have multiplayer",
                                   "has no multiplayer mode")))
    if future:
        out = [_future(p) for p in out]
    return out


_FUTURE = (("has ", "will have "), ("supports ", "will support "), ("runs ", "will run "),
           ("is single", "will be single"), ("isn't ", "won't be "), ("doesn't ", "won't "),
           ("can't ", "won't "), ("can be played", "will be playable"), ("is a", "will be a"),
           ("is rated", "will be rated"), ("was developed", "is being developed"),
           ("was made", "is being made"))


def _future(predicate: str) -> str:
    """The predicate about an announced game in the future tense."""
    for now, then in _FUTURE:
        if predicate.startswith(now):  # "isn't available" -> "won't be available"
            return then + predicate[len(now):]
    return predicate


def sentences(rng: random.Random, slots: Slots, attrs: Sequence[str], subject: str) -> str:
    """The attributes as one or two sentences about ``subject`` ("It", the game's name)."""
    preds = predicates(rng, slots, attrs)
    if len(preds) <= 3:
        return f"{subject} {and_list(preds)}."
    cut = rng.randint(2, len(preds) - 1)
    return f"{subject} {and_list(preds[:cut])}. {rng.choice(('It', 'The game'))} " \
           f"{and_list(preds[cut:])}."


def _pick(rng: random.Random, slots: Slots, pool: Sequence[str], lo: int, hi: int) -> list[str]:
    """Between ``lo`` and ``hi`` of the attributes in ``pool`` that ``slots`` has."""
    have = [p for p in pool if p in slots]
    k = min(len(have), rng.randint(lo, hi))
    return sorted(rng.sample(have, k), key=ATTRIBUTES.index)


def _keep(slots: Slots, attrs: Sequence[str]) -> Slots:
    return {k: v for k, v in slots.items() if k in attrs}


Builder = Callable[[random.Random, Slots], tuple[str, Slots]]


class _Skip(Exception):
    """This game cannot carry this function (an unreleased game has no rating)."""


def inform(rng: random.Random, slots: Slots) -> tuple[str, Slots]:
    name = str(slots["name"])
    attrs = _pick(rng, slots, [x for x in ATTRIBUTES if x != "name"], 2, 7)
    describable = ("rating", "genres", "player_perspective", "release_year", "developer")
    in_np = [x for x in attrs if x in describable and rng.random() < 0.6]
    rest = [x for x in attrs if x not in in_np]
    if rng.random() < 0.3:
        rng.shuffle(rest)
    if not in_np:
        return sentences(rng, slots, rest, name), _keep(slots, ["name"] + attrs)
    desc = a(np(rng, slots, in_np))
    options = [f"{name} is {desc}." + (" " + sentences(rng, slots, rest, "It") if rest else "")]
    if rest:
        preds = predicates(rng, slots, rest)
        options += [f"{name}, {desc}, {and_list(preds)}.",
                    f"{cap(desc)}, {name} {and_list(preds)}.",
                    f"{name} is {desc} that {and_list(preds)}."]
    if "release_year" in in_np and len(in_np) > 1:
        others = [x for x in in_np if x != "release_year"]
        options.append(f"Released in {slots['release_year']}, {name} is "
                       f"{a(np(rng, slots, others))}."
                       + (" " + sentences(rng, slots, rest, "It") if rest else ""))
    return rng.choice(options), _keep(slots, ["name"] + attrs)


def give_opinion(rng: random.Random, slots: Slots) -> tuple[str, Slots]:
    if "rating" not in slots:
        raise _Skip
    name, rating = str(slots["name"]), str(slots["rating"])
    extras = _pick(rng, slots, ("genres", "player_perspective", "has_multiplayer", "developer",
                                "release_year", "platforms"), 0, 2)
    adj = rng.choice(RATING_ADJ[rating])
    verb = rng.choice(OPINION_VERBS[rating])
    keep = ["name", "rating"] + extras
    if rng.random() < 0.15:
        spec = rng.choice(NEGATIVE_SPECIFIERS if rating == "poor" else POSITIVE_SPECIFIERS)
        slots = {**slots, "specifier": spec}
        games = np(rng, slots, extras, many=True)
        return (f"I think {name} is {a(adj)} game, one of the most {spec} {games} "
                f"I've played.", _keep(slots, keep + ["specifier"]))
    if not extras:
        options = [f"I {verb} {name}.", f"Honestly, {name} is {a(adj)} game.",
                   f"{name}? I'd say it's {a(adj)} game."]
    else:
        desc = a(np(rng, slots, ["rating"] + extras))
        options = [f"I think {name} is {desc}.", f"In my opinion, {name} is {desc}.",
                   f"{name} is {desc}, if you ask me.",
                   f"I {verb} {name}, which {and_list(predicates(rng, slots, extras))}."]
        if not {"has_multiplayer", "platforms"} & set(extras):
            options.append(f"I {verb} {name}, the {np(rng, slots, extras)}.")
    return rng.choice(options), _keep(slots, keep)


def confirm(rng: random.Random, slots: Slots) -> tuple[str, Slots]:
    name = str(slots["name"])
    extras = _pick(rng, slots, ("release_year", "exp_release_date", "developer", "platforms",
                                "genres", "player_perspective"), 1, 2)
    desc = np(rng, slots, extras)
    preds = and_list(predicates(rng, slots, extras))
    return rng.choice([
        f"So you mean {name}, the {desc}?", f"Are you talking about {name}, the {desc}?",
        f"You mean {name}? The {desc}?", f"Just to be sure, you mean {name}, which {preds}?",
        f"{name}, the one that {preds}, right?", f"Oh, do you mean {name}, the {desc}?",
    ]), _keep(slots, ["name"] + extras)


def verify_attribute(rng: random.Random, slots: Slots) -> tuple[str, Slots]:
    if "rating" not in slots:
        raise _Skip
    name, rating = str(slots["name"]), str(slots["rating"])
    adj = rng.choice(RATING_ADJ[rating])
    liked = rating in ("good", "excellent")
    if liked:
        lead = rng.choice((f"You mentioned you liked {name}.", f"You said you really enjoyed "
                           f"{name}.", f"Earlier you told me {name} was {adj}.",
                           f"I remember you saying {name} was {adj}."))
    elif rating == "poor":
        lead = rng.choice((f"You mentioned you didn't like {name}.", f"You said {name} was "
                           f"{adj}.", f"Earlier you told me {name} was {adj}."))
    else:
        lead = rng.choice((f"You said {name} was just {adj}.", f"You mentioned {name} was "
                           f"only {adj}.", f"Earlier you called {name} {adj}."))
    attribute = rng.choice([x for x in (*VERIFY, *VERIFY_YES_NO) if x in slots])
    if attribute in VERIFY:
        question = rng.choice(VERIFY[attribute][0 if liked else 1])
    else:
        question = rng.choice(VERIFY_YES_NO[attribute][0 if slots[attribute] == "yes" else 1])
    view = str(slots["player_perspective"])
    question = question.format(g=_genres(slots), pp=rng.choice(VIEW_PP[view]),
                               va=rng.choice(VIEW_ADJ[view]), p=_platforms(slots),
                               d=slots["developer"], e=slots["esrb"],
                               y=slots.get("release_year", ""))
    return f"{lead} {question}", _keep(slots, ["name", "rating", attribute])


def suggest(rng: random.Random, slots: Slots) -> tuple[str, Slots]:
    name = str(slots["name"])
    extras = _pick(rng, slots, ("release_year", "exp_release_date", "genres",
                                "player_perspective", "platforms", "developer",
                                "has_multiplayer", "esrb"), 1, 3)
    desc = np(rng, slots, extras)
    preds = and_list(predicates(rng, slots, extras))
    upcoming = "exp_release_date" in slots
    options = [f"Do you want to try {name}? It {preds}.", f"How about {name}? It's {a(desc)}.",
               f"What about {name}, {a(desc)}?",
               f"Would you be interested in {name}? It {preds}.",
               f"Have you {'heard about' if upcoming else 'played'} {name}, the {desc}?"]
    if not upcoming:
        options.append(f"Do you also enjoy playing {np(rng, slots, extras, many=True)}, "
                       f"such as {name}?")
    return rng.choice(options), _keep(slots, ["name"] + extras)


def recommend(rng: random.Random, slots: Slots) -> tuple[str, Slots]:
    if "exp_release_date" in slots:
        raise _Skip
    name = str(slots["name"])
    extras = _pick(rng, slots, ("developer", "genres", "platforms", "player_perspective",
                                "has_multiplayer", "release_year", "available_on_steam",
                                "has_mac_release", "has_linux_release", "esrb"), 1, 3)
    games = np(rng, slots, extras, many=True)
    preds = and_list(predicates(rng, slots, extras))
    return rng.choice([
        f"If you like {games}, you should try {name}.",
        f"Since you enjoy {games}, have you tried {name}?",
        f"If you're into {games}, {name} is a great pick.",
        f"You should check out {name}. It {preds}.", f"I'd recommend {name}: it {preds}.",
        f"{name} might be right up your alley, since it {preds}.",
    ]), _keep(slots, ["name"] + extras)


def request_explanation(rng: random.Random, slots: Slots) -> tuple[str, Slots]:
    if "rating" not in slots:
        raise _Skip
    rating = str(slots["rating"])
    adj = rng.choice(EXPLAIN_ADJ[rating])
    liked = rating in ("good", "excellent")
    if rng.random() < 0.25:
        name = str(slots["name"])
        options = ([f"What is it about {name} that you like so much?",
                    f"Why do you think {name} is so {adj}?"] if liked else
                   [f"What is it about {name} that you found so {adj}?",
                    f"What made {name} so {adj} for you?"])
        return rng.choice(options), _keep(slots, ["name", "rating"])
    extras = _pick(rng, slots, ("genres", "player_perspective", "has_multiplayer", "platforms",
                                "developer", "release_year"), 1, 2)
    games = np(rng, slots, extras, many=True)
    if liked:
        options = [f"What is it about {games} that you enjoy so much?",
                   f"Why do you like {games} so much?",
                   f"What makes {games} so {adj} in your eyes?"]
    elif rating == "poor":
        options = [f"What is it about {games} that you find so {adj}?",
                   f"Why do you find {games} so {adj}?"]
    else:
        options = [f"Why do you think {games} are just {adj}?",
                   f"What makes {games} feel so {adj} to you?"]
    return rng.choice(options), _keep(slots, ["rating"] + extras)


def request(rng: random.Random, slots: Slots) -> tuple[str, Slots]:
    extras = _pick(rng, slots, ("release_year", "genres", "player_perspective", "platforms",
                                "developer", "esrb", "has_multiplayer"), 0, 2)
    spec = rng.choice(SPECIFIERS)
    slots = {**slots, "specifier": spec}
    with_spec = ["specifier"] + extras
    one, many = np(rng, slots, with_spec), np(rng, slots, with_spec, many=True)
    return rng.choice([
        f"Is there {a(one)} that you like?", f"Have you played any {many} lately?",
        f"What's the most {spec} {np(rng, slots, extras)} you've ever played?",
        f"Can you think of {a(one)} that you really enjoyed?",
        f"What is {a(one)} you would recommend?", f"Do you know of any {many}?",
    ]), _keep(slots, with_spec)


def request_attribute(rng: random.Random, slots: Slots) -> tuple[str, Slots]:
    attribute = rng.choice(list(ASK))
    lead = rng.choice(LEADS)
    question = rng.choice(ASK[attribute])
    return (lead + question) if lead else cap(question), {attribute: ""}


BUILDERS: dict[str, Builder] = {
    "inform": inform, "request": request, "give_opinion": give_opinion, "confirm": confirm,
    "verify_attribute": verify_attribute, "suggest": suggest,
    "request_explanation": request_explanation, "recommend": recommend,
    "request_attribute": request_attribute,
}


def generate(n: int = N, *, seed: int = SEED) -> list[dict[str, str]]:
    """``n`` rows with distinct sentences; functions drawn by ``FUNCTION_WEIGHTS``."""
    rng = random.Random(seed)
    games = catalogue()
    functions, weights = list(FUNCTION_WEIGHTS), list(FUNCTION_WEIGHTS.values())
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    while len(rows) < n:
        function = rng.choices(functions, weights)[0]
        try:
            target, slots = BUILDERS[function](rng, facts(rng.choice(games)))
        except _Skip:
            continue
        if target in seen:
            continue
        seen.add(target)
        rows.append({"target": target, "meaning_representation": render_mr(function, slots)})
    return rows
