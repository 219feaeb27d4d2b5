"""Synthetic emotion-segmented replies for the ``json-emotions`` preset.

Each row is ``{"text": reply, "reference": JSON}``: a customer-support, chat or diary style
reply of one to four segments, and ``json.dumps`` of the list of ``{"text", "emotion"}``
objects whose texts, joined by single spaces, give the reply exactly. A reply keeps one
scenario and one object, person and place throughout, so its segments read as one message;
a few templates split one sentence into two clauses with different emotions ("I was furious
at first," / "but thank you for sorting it out so fast.").
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

N = 1200
SEED = 20_240_609

EMOTIONS: tuple[str, ...] = ("joy", "sadness", "anger", "fear", "surprise", "disgust",
                             "gratitude", "neutral")
EMOTION_WEIGHTS = (14, 11, 13, 11, 11, 8, 15, 17)
# What may follow what in one reply, so that a reply reads as one mood turning into another
# ("I was worried ... It turned up ... Thanks!") rather than a random walk.
FOLLOWS: dict[str, tuple[str, ...]] = {
    "joy": ("joy", "gratitude", "surprise", "neutral"),
    "sadness": ("sadness", "gratitude", "neutral", "anger", "fear"),
    "anger": ("anger", "disgust", "sadness", "neutral", "fear"),
    "fear": ("fear", "joy", "gratitude", "surprise", "sadness", "neutral"),
    "surprise": ("joy", "gratitude", "anger", "disgust", "fear", "neutral"),
    "disgust": ("disgust", "anger", "neutral", "sadness"),
    "gratitude": ("joy", "neutral", "gratitude"),
    "neutral": EMOTIONS,
}
SEGMENT_COUNTS = ((1, 20), (2, 35), (3, 30), (4, 15))

# Templates: {obj} {Obj} {person} {Person} {place} {time} {num} {dur}. A leading "!" marks a
# template that needs a physical object (a parcel can smell, an account cannot); a leading
# "@" one that only fits a message to customer support, "~" one that only fits a diary entry
# or a chat with a friend.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "joy": (
        "I'm so happy {obj} finally came through!", "This made my whole day!",
        "I'm thrilled with how {obj} turned out.", "Yay, it's all sorted!",
        "Everything works perfectly now and I couldn't be happier.",
        "I was grinning from ear to ear when I saw {obj}.",
        "{Obj} is even better than I hoped!", "Honestly, this is the best news I've had all week.",
        "I'm over the moon right now.", "~We had such a lovely time at {place}.",
        "~{Person} and I laughed the whole afternoon.", "I'm delighted with the result.",
        "It feels amazing to finally have {obj} sorted out.", "I can't stop smiling about it.",
        "So glad everything worked out in the end.", "I absolutely love it!",
        "~Seeing {person} again {time} was pure happiness.",
        "What a wonderful thing to come home to!",
    ),
    "sadness": (
        "I'm really sad that {obj} didn't work out.",
        "It's been a rough week and this just made it worse.", "~I miss how things used to be.",
        "Honestly, I just feel let down and a bit lonely.",
        "I was so disappointed when I saw {obj}.",
        "~{Person} moved away {time}, and it feels empty.",
        "I cried a little when I read the email.", "I really wish things had gone differently.",
        "Nothing seems to be going right for me lately.",
        "I feel pretty down about the whole thing.",
        "It's sad that {place} is closing for good.",
        "I was looking forward to it so much, and now it's ruined.",
        "Sorry, I'm just feeling low today.",
        "I don't think I'll ever get {obj} back, and that hurts.",
        "It's a gloomy end to what should have been a good day.",
    ),
    "anger": (
        "This is absolutely unacceptable!", "I'm furious that {obj} is still not sorted.",
        "@I've been on hold for {dur} and nobody has helped me!",
        "Why does {person} keep ignoring my messages?", "I am sick and tired of these excuses.",
        "Honestly, I'm fuming right now.", "How hard can it be to get {obj} right?",
        "This is the third time I've had to complain!",
        "I'm really angry about the way {person} handled this.",
        "@Stop sending me the same useless template!", "@I want to speak to a manager, right now.",
        "It drives me crazy that nobody takes responsibility.",
        "{Person} was incredibly rude to me and I'm livid.",
        "I've wasted {dur} on this and I'm furious.",
    ),
    "fear": (
        "I was really worried {obj} was lost.", "I'm scared that something happened to {obj}.",
        "My hands were shaking when I got the message.", "I'm afraid this will happen again.",
        "I'm anxious that {person} won't get back to me in time.",
        "I panicked when I couldn't find {obj}.",
        "I couldn't sleep {time} because I was so worried.",
        "I'm nervous it won't be ready before the weekend.",
        "I keep worrying that I did something wrong.", "What if it gets worse?",
        "I'm terrified of losing {obj} for good.",
        "It's a bit frightening not knowing what's going on.",
    ),
    "surprise": (
        "Wow, I didn't expect that at all!", "Wait, it was fixed that quickly?",
        "Oh! I had no idea {person} was going to call.", "That was completely unexpected.",
        "To my surprise, {obj} was already sorted.",
        "Whoa, I never thought {person} would remember.", "I was stunned when I saw the total.",
        "No way, it actually worked on the first try!",
        "Huh, I didn't know {place} opened so early.", "It caught me completely off guard.",
        "I honestly can't believe it was done in a single day!",
    ),
    "disgust": (
        "The way {person} treated me was disgusting.",
        "Frankly, that kind of behaviour makes me sick.",
        "Yuck, I don't even want to think about it.",
        "Ugh, that's just nasty.", "The whole thing left a bad taste in my mouth.",
        "I find it repulsive that nobody bothered to clean {place}.",
        "It's gross how {person} talked about other customers.",
        "!{Obj} smelled absolutely revolting.",
        "!{Obj} arrived covered in some sticky, gross residue.",
        "!Ugh, there was mold all over {obj}.",
        "!Honestly, {obj} was so grimy I didn't want to touch it.",
    ),
    "gratitude": (
        "Thanks so much for fixing this!", "Thank you for your patience with me.",
        "I really appreciate your help with {obj}.",
        "Many thanks to {person} for going above and beyond.", "Thanks a million!",
        "I'm so grateful you took the time to look into it.",
        "Thank you for sorting out {obj} so quickly.", "Big thanks to the whole team.",
        "@Cheers for the quick reply.", "I can't thank you enough.",
        "@Thanks for keeping me updated.", "Please pass my thanks on to {person}.",
        "Thank you, this helped a lot.",
    ),
    "neutral": (
        "@My order number is {num}.", "I'm writing about {obj}.", "@I placed the request {time}.",
        "I'll check again tomorrow.", "@The ticket reference is {num}.",
        "@Let me know if you need anything else from me.", "I went to {place} {time}.",
        "!@I've attached a photo of {obj}.", "It's the one I bought {time}.",
        "{Person} said they'd call back on Friday.", "@Just following up on my previous message.",
        "@I usually use the app on my phone.", "~I'll be home after six.",
        "~We're meeting at {place} at noon.", "I contacted {person} about it {time}.",
    ),
}

# Two clauses of one sentence, each its own segment.
CLAUSE_PAIRS: tuple[tuple[str, str, str, str], ...] = (
    ("fear", "I was really worried {obj} was gone for good,", "joy",
     "but it turned up and I'm so happy!"),
    ("anger", "I was furious at first,", "gratitude", "but thank you for sorting it out so fast."),
    ("surprise", "To be honest I didn't expect a reply at all,", "gratitude",
     "so thanks for getting back to me."),
    ("neutral", "I contacted {person} {time},", "anger",
     "and they still haven't done anything about it!"),
    ("sadness", "It's a shame {obj} didn't work out,", "gratitude", "but I appreciate you trying."),
    ("joy", "I was so excited about {obj},", "sadness", "but now I'm just gutted."),
    ("neutral", "I checked the status page {time},", "surprise",
     "and wow, it says it's done already!"),
    ("neutral", "When I opened the box,", "disgust", "the smell was absolutely vile."),
    ("fear", "I was nervous calling you,", "joy", "but it went better than I could have hoped!"),
)


@dataclass(frozen=True)
class Scenario:
    objects: tuple[str, ...]
    people: tuple[str, ...]
    places: tuple[str, ...]
    physical: bool
    """Whether its objects can be smelled and touched (for the marked templates)."""
    boxed: bool = False
    """Whether "when I opened the box" makes sense."""
    support: bool = True
    """A message to customer support, rather than a diary entry or a chat with a friend."""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(("my order", "the package", "the parcel", "my new headphones",
              "the replacement charger", "the blender I ordered", "my winter jacket"),
             ("the courier", "your driver", "the delivery guy", "the warehouse team"),
             ("the post office", "the depot", "the pickup point"), True, True),
    Scenario(("my laptop", "the phone", "my tablet", "the router", "the printer", "my camera"),
             ("the technician", "your repair team", "the engineer"),
             ("the repair shop", "the service center"), True, True),
    Scenario(("my account", "the refund", "my subscription", "the invoice", "the card payment",
              "the password reset"), ("your billing team", "the agent", "customer service"),
             ("the branch", "the help desk"), False),
    Scenario(("my flight", "the hotel booking", "my suitcase", "the train ticket",
              "my passport"), ("the gate agent", "the hotel staff", "the airline"),
             ("the airport", "the hotel", "the station"), True),
    Scenario(("the soup", "my lunch order", "the salad", "the pizza", "the takeaway"),
             ("the waiter", "the chef", "the delivery rider"),
             ("the restaurant", "the cafe", "the food court"), True, True),
    Scenario(("my presentation", "the exam results", "my project", "the report",
              "my job interview", "the group assignment"),
             ("my sister", "my boss", "my best friend", "my mom", "my coworker", "my neighbor"),
             ("the office", "school", "the park", "the gym", "my parents' place"), False,
             support=False),
)
TIMES = ("yesterday", "this morning", "last night", "on Monday", "two days ago",
         "an hour ago", "last week", "earlier today")
DURATIONS = ("two hours", "45 minutes", "three days", "over a week", "an entire afternoon")


def _fill(rng: random.Random, template: str, scene: dict[str, str]) -> str:
    obj, person = scene["obj"], scene["person"]
    return template.format(
        obj=obj, Obj=obj[:1].upper() + obj[1:], person=person,
        Person=person[:1].upper() + person[1:], place=scene["place"], time=rng.choice(TIMES),
        num=f"#{rng.randint(10000, 99999)}", dur=rng.choice(DURATIONS),
    )


def _usable(template: str, scenario: Scenario) -> bool:
    marks = template[: len(template) - len(template.lstrip("!@~"))]
    return (("!" not in marks or scenario.physical)
            and ("@" not in marks or scenario.support)
            and ("~" not in marks or not scenario.support)
            and ("the box" not in template or scenario.boxed))


def _reply(rng: random.Random) -> list[dict[str, str]]:
    scenario = rng.choice(SCENARIOS)
    scene = {"obj": rng.choice(scenario.objects), "person": rng.choice(scenario.people),
             "place": rng.choice(scenario.places)}
    count = rng.choices([c for c, _ in SEGMENT_COUNTS], [w for _, w in SEGMENT_COUNTS])[0]
    segments: list[dict[str, str]] = []
    while len(segments) < count:
        if count - len(segments) >= 2 and rng.random() < 0.12:
            e1, t1, e2, t2 = rng.choice(CLAUSE_PAIRS)
            if not _usable(t1, scenario) or (segments and e1 not in FOLLOWS[
                    segments[-1]["emotion"]]):
                continue
            segments += [{"text": _fill(rng, t1, scene), "emotion": e1},
                         {"text": _fill(rng, t2, scene), "emotion": e2}]
            continue
        emotion = rng.choices(EMOTIONS, EMOTION_WEIGHTS)[0]
        if segments:
            last = segments[-1]["emotion"]
            if emotion not in FOLLOWS[last] or (emotion == last and rng.random() < 0.8):
                continue  # and a reply rarely says the same feeling twice in a row
        template = rng.choice([t for t in TEMPLATES[emotion] if _usable(t, scenario)])
        text = _fill(rng, template.lstrip("!@~"), scene)
        if all(text != s["text"] for s in segments):
            segments.append({"text": text, "emotion": emotion})
    return segments


def generate(n: int = N, *, seed: int = SEED) -> list[dict[str, str]]:
    """``n`` rows with distinct texts; ``reference`` is the JSON list of segments."""
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    while len(rows) < n:
        segments = _reply(rng)
        text = " ".join(s["text"] for s in segments)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"text": text, "reference": json.dumps(segments, ensure_ascii=False)})
    return rows
