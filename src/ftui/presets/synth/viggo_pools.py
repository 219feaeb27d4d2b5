"""Game catalogue and wording for the synthetic ViGGO sample (data only; see ``viggo.py``).

Well-known games carry approximately their real facts; the rest of the catalogue is built
from invented titles with coherent attributes (a shooter is usually first person, Steam and
Linux/Mac releases only for PC games, the Switch only from 2017).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Game:
    name: str
    year: int | None
    """None for an announced game, which has ``expected`` instead."""
    developer: str
    esrb: str
    genres: tuple[str, ...]
    perspective: str
    platforms: tuple[str, ...]
    steam: bool
    linux: bool
    mac: bool
    multiplayer: bool
    rating: str
    expected: str = ""


E, E10, T, M = ("E (for Everyone)", "E 10+ (for Everyone 10 and Older)", "T (for Teen)",
                "M (for Mature)")
PS, XB, NS = "PlayStation", "Xbox", "Nintendo Switch"

# name | year | developer | esrb | genres | perspective | platforms | steam linux mac multi | rating
# (one game per line, past the usual line length, so that the table reads as a table)
_REAL = """
BioShock|2007|2K Boston|M|action-adventure,role-playing,shooter|first person|PC,PlayStation,Xbox|ynyn|excellent
Portal 2|2011|Valve Corporation|E10|platformer,puzzle,shooter|first person|PC,PlayStation,Xbox|yyyy|excellent
The Witcher 3: Wild Hunt|2015|CD Projekt RED|M|action-adventure,role-playing|third person|PC,PlayStation,Xbox,Nintendo Switch|ynnn|excellent
Stardew Valley|2016|ConcernedApe|E10|indie,role-playing,simulation|bird view|PC,PlayStation,Xbox,Nintendo Switch|yyyy|excellent
Minecraft|2011|Mojang|E10|adventure,simulation|first person|PC,PlayStation,Xbox,Nintendo Switch|nyyy|good
Celeste|2018|Matt Makes Games|E10|indie,platformer|side view|PC,PlayStation,Xbox,Nintendo Switch|yyyn|excellent
Hollow Knight|2017|Team Cherry|E10|action,adventure,indie,platformer|side view|PC,PlayStation,Xbox,Nintendo Switch|yyyn|excellent
Halo 3|2007|Bungie|M|shooter|first person|Xbox|nnny|excellent
Dirt: Showdown|2012|Codemasters|E10|driving/racing,sport|third person|PC,PlayStation,Xbox|ynny|average
Little Big Adventure|1994|Adeline Software International|T|action-adventure,puzzle|bird view|PC,PlayStation|ynyn|average
Tomb Raider: The Last Revelation|1999|Core Design|T|action-adventure,puzzle|third person|PC,PlayStation|ynnn|good
Worms: Reloaded|2010|Team17|T|strategy,turn-based strategy|side view|PC|yyyy|average
The Elder Scrolls V: Skyrim|2011|Bethesda Game Studios|M|action-adventure,role-playing|first person|PC,PlayStation,Xbox,Nintendo Switch|ynnn|excellent
Rocket League|2015|Psyonix|E|driving/racing,sport|third person|PC,PlayStation,Xbox,Nintendo Switch|yyyy|good
Diablo III|2012|Blizzard Entertainment|M|action,hack-and-slash,role-playing|bird view|PC,PlayStation,Xbox,Nintendo Switch|nnyy|good
StarCraft II: Wings of Liberty|2010|Blizzard Entertainment|T|real-time strategy,strategy|bird view|PC|nnyy|excellent
Super Mario Odyssey|2017|Nintendo|E10|adventure,platformer|third person|Nintendo Switch|nnnn|excellent
Half-Life 2|2004|Valve Corporation|M|shooter|first person|PC,Xbox|yyyn|excellent
Mass Effect 2|2010|BioWare|M|action,role-playing,shooter|third person|PC,PlayStation,Xbox|ynnn|excellent
Sid Meier's Civilization V|2010|Firaxis Games|E10|strategy,turn-based strategy|bird view|PC|yyyy|excellent
Undertale|2015|tobyfox|E10|indie,role-playing|bird view|PC,PlayStation,Nintendo Switch|yyyn|excellent
Dark Souls|2011|FromSoftware|M|action,role-playing|third person|PC,PlayStation,Xbox|ynny|good
Overwatch|2016|Blizzard Entertainment|T|shooter|first person|PC,PlayStation,Xbox,Nintendo Switch|nnny|good
Street Fighter IV|2008|Capcom|T|fighting|side view|PC,PlayStation,Xbox|ynny|good
Spyro the Dragon|1998|Insomniac Games|E|adventure,platformer|third person|PlayStation|nnnn|good
FIFA 18|2017|EA Vancouver|E|simulation,sport|third person|PC,PlayStation,Xbox,Nintendo Switch|nnny|average
Age of Empires II|1999|Ensemble Studios|T|real-time strategy,strategy|bird view|PC|ynny|excellent
Myst|1993|Cyan|E|adventure,point-and-click,puzzle|first person|PC|ynyn|good
Grim Fandango|1998|LucasArts|T|adventure,point-and-click,puzzle|third person|PC|yyyn|excellent
Bastion|2011|Supergiant Games|E10|action,indie,role-playing|bird view|PC,PlayStation,Xbox,Nintendo Switch|yyyn|good
Mario Kart 8 Deluxe|2017|Nintendo|E|driving/racing,vehicular combat|third person|Nintendo Switch|nnny|excellent
Assassin's Creed Unity|2014|Ubisoft Montreal|M|action-adventure|third person|PC,PlayStation,Xbox|ynny|average
Aliens: Colonial Marines|2013|Gearbox Software|M|shooter|first person|PC,PlayStation,Xbox|ynny|poor
Ride to Hell: Retribution|2013|Eutechnyx|M|action-adventure,driving/racing|third person|PC,PlayStation,Xbox|ynnn|poor
Duke Nukem Forever|2011|Gearbox Software|M|shooter|first person|PC,PlayStation,Xbox|ynny|poor
Guitar Hero III: Legends of Rock|2007|Neversoft|T|music|third person|PC,PlayStation,Xbox|nnny|good
"""
_ESRB = {"E": E, "E10": E10, "T": T, "M": M}

GENRES = ("action", "action-adventure", "adventure", "driving/racing", "fighting",
          "hack-and-slash", "indie", "MMORPG", "music", "platformer", "point-and-click",
          "puzzle", "real-time strategy", "role-playing", "shooter", "simulation", "sport",
          "strategy", "tactical", "text adventure", "trivia/board game", "turn-based strategy",
          "vehicular combat")
PERSPECTIVES = ("first person", "third person", "side view", "bird view")
RATINGS = ("poor", "average", "good", "excellent")
ESRBS = (E, E10, T, M)
SPECIFIERS = ("interesting", "exciting", "fun", "boring", "addictive", "relaxing",
              "challenging", "underrated", "disappointing", "frustrating", "memorable",
              "creative", "immersive", "enjoyable", "overrated", "unique")

_FIRST = ("Starfall", "Iron", "Crimson", "Neon", "Hollow", "Silent", "Shattered", "Frost",
          "Ember", "Cobalt", "Lunar", "Rogue", "Wild", "Ancient", "Clockwork", "Velvet",
          "Sunken", "Thunder", "Paper", "Obsidian", "Golden", "Phantom", "Echo", "Solar")
_SECOND = ("Odyssey", "Harbor", "Drift", "Tides", "Pines", "Legion", "Frontier", "Circuit",
           "Kingdom", "Protocol", "Run", "Vanguard", "Saga", "Arena", "Descent", "Garden",
           "Skies", "Rebellion", "Outpost", "Citadel", "Requiem", "Expedition", "Rally")
_SUFFIX = ("", "", "", "", " 2", " II", ": Reborn", " Tactics", ": Origins", " Deluxe")
_DEVELOPERS = ("Moonlit Forge", "Bright Harbor Games", "Pixel Orchard", "Northwind Studios",
               "Cobalt Lantern", "Tidewater Interactive", "Quiet Fox Studio", "Redshift Games",
               "Glasshouse Interactive", "Ubisoft Montreal", "Codemasters", "Square Enix",
               "Capcom", "BioWare", "Nintendo", "Valve Corporation", "Team17", "Sega",
               "Bandai Namco", "Paradox Interactive", "Double Fine Productions", "id Software")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")

# Genre combinations that occur together; between them they use every genre.
_GENRE_SETS: tuple[tuple[str, ...], ...] = tuple(tuple(g.split("|")) for g in (
    "action|adventure", "action-adventure", "action-adventure|role-playing", "role-playing",
    "action|role-playing", "hack-and-slash|role-playing", "shooter", "action|shooter",
    "shooter|tactical", "driving/racing", "driving/racing|sport",
    "driving/racing|vehicular combat", "sport", "simulation|sport", "simulation",
    "strategy|turn-based strategy", "real-time strategy|strategy", "strategy|tactical",
    "tactical|turn-based strategy", "puzzle", "indie|puzzle", "indie|platformer", "platformer",
    "action|platformer", "adventure|point-and-click", "adventure|point-and-click|puzzle",
    "text adventure", "adventure|text adventure", "fighting", "action|fighting", "music",
    "indie|music", "trivia/board game", "MMORPG|role-playing", "MMORPG",
    "indie|role-playing|simulation", "action-adventure|shooter", "vehicular combat",
    "action|vehicular combat", "puzzle|trivia/board game", "action|hack-and-slash",
))

# A genre's usual view and age rating, for invented games.
_VIEW = {"shooter": "first person", "platformer": "side view", "fighting": "side view",
         "strategy": "bird view", "real-time strategy": "bird view",
         "turn-based strategy": "bird view", "MMORPG": "third person",
         "point-and-click": "third person", "driving/racing": "third person"}
_AGE = {"shooter": M, "hack-and-slash": M, "fighting": T, "action-adventure": T,
        "MMORPG": T, "platformer": E10, "puzzle": E, "sport": E, "music": T,
        "trivia/board game": E, "simulation": E}


def _real_games() -> list[Game]:
    games = []
    for line in _REAL.strip().splitlines():
        name, year, dev, esrb, genres, view, platforms, flags, rating = line.split("|")
        steam, linux, mac, multi = (f == "y" for f in flags)
        games.append(Game(name, int(year), dev, _ESRB[esrb], tuple(genres.split(",")), view,
                          tuple(platforms.split(",")), steam, linux, mac, multi, rating))
    return games


def _invented_game(rng: random.Random, name: str, *, upcoming: bool) -> Game:
    genres = rng.choice(_GENRE_SETS)
    view = next((_VIEW[g] for g in genres if g in _VIEW), rng.choice(PERSPECTIVES))
    if rng.random() < 0.2:
        view = rng.choice(PERSPECTIVES)
    esrb = next((_AGE[g] for g in genres if g in _AGE), rng.choice(ESRBS))
    year = None if upcoming else rng.randint(1995, 2024)
    consoles = [PS, XB] + ([NS] if year is None or year >= 2017 else ["Nintendo"])
    platforms = tuple(p for p in ["PC"] + consoles if rng.random() < 0.55) or ("PC",)
    pc = "PC" in platforms
    return Game(
        name=name, year=year, developer=rng.choice(_DEVELOPERS), esrb=esrb, genres=genres,
        perspective=view, platforms=platforms, steam=pc and rng.random() < 0.7,
        linux=pc and rng.random() < 0.35, mac=pc and rng.random() < 0.5,
        multiplayer=rng.random() < 0.5, rating=rng.choice(RATINGS),
        expected=f"{rng.choice(_MONTHS)} {rng.randint(2027, 2029)}" if upcoming else "",
    )


def catalogue(seed: int = 1994) -> list[Game]:
    """The real games, then invented ones (a sixth of them still to be released)."""
    rng = random.Random(seed)
    games = _real_games()
    titles = [f + " " + s for f in _FIRST for s in _SECOND]
    rng.shuffle(titles)
    for i, title in enumerate(titles[:110]):
        games.append(_invented_game(rng, title + rng.choice(_SUFFIX), upcoming=i % 6 == 0))
    return games


# --- wording -----------------------------------------------------------------------------

GENRE_WORDS = {"driving/racing": "racing", "trivia/board game": "trivia", "sport": "sports"}
VIEW_ADJ = {"first person": ("first-person",), "third person": ("third-person",),
            "side view": ("side-view", "side-scrolling"), "bird view": ("top-down",
                                                                       "bird's-eye view")}
VIEW_PP = {"first person": ("from a first-person perspective", "in first person"),
           "third person": ("from a third-person perspective", "in third person"),
           "side view": ("from a side view", "from a side-view perspective"),
           "bird view": ("from a bird's-eye view", "from a bird view perspective")}
RATING_ADJ = {"poor": ("poor", "bad", "disappointing", "weak", "poorly rated"),
              "average": ("average", "mediocre", "middling", "so-so", "decent but forgettable"),
              "good": ("good", "solid", "pretty good", "well-received", "really good"),
              "excellent": ("excellent", "fantastic", "great", "outstanding", "amazing",
                            "critically acclaimed")}
REVIEWS = {"poor": ("poor", "negative", "bad"), "average": ("average", "mixed", "lukewarm"),
           "good": ("good", "positive", "favorable"),
           "excellent": ("excellent", "glowing", "rave")}
EXPLAIN_ADJ = {"poor": ("disappointing", "bad", "unappealing", "frustrating", "excruciating"),
               "average": ("average", "mediocre", "unremarkable", "underwhelming"),
               "good": ("good", "enjoyable", "appealing"),
               "excellent": ("great", "amazing", "fantastic", "excellent")}
OPINION_VERBS = {"poor": ("really didn't like", "was disappointed by", "didn't enjoy"),
                 "average": ("felt lukewarm about", "thought nothing special of",
                             "had mixed feelings about"),
                 "good": ("liked", "enjoyed", "had a good time with"),
                 "excellent": ("loved", "absolutely loved", "really enjoyed")}
POSITIVE_SPECIFIERS = ("interesting", "exciting", "fun", "addictive", "relaxing", "challenging",
                       "memorable", "creative", "immersive", "enjoyable", "unique")
NEGATIVE_SPECIFIERS = ("boring", "disappointing", "frustrating", "overrated")

VERIFY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # attribute -> (questions when they liked the game, questions when they did not)
    "genres": (("Do you generally enjoy {g} games?", "Are {g} games your favorite kind?"),
               ("Do you generally dislike {g} games?", "Are {g} games just not for you?")),
    "player_perspective": (("Do you usually prefer games played {pp}?",
                            "Do you like {va} games in general?"),
                           ("Do {va} games usually not appeal to you?",
                            "Do you generally dislike games played {pp}?")),
    "platforms": (("Do you often play games on {p}?", "Do you play a lot on {p}?"),) * 2,
    "developer": (("Are you a fan of games by {d} in general?", "Do you like other {d} games "
                   "too?"), ("Do you usually dislike games by {d}?",
                             "Are {d} games generally not your thing?")),
    "esrb": (("Do you usually play games rated {e}?", "Are most of the games you play rated "
              "{e}?"),) * 2,
    "release_year": (("Do you like games from {y} in general?",
                      "Do you often play games released in {y}?"),) * 2,
}
VERIFY_YES_NO: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # attribute -> (questions when the value is yes, when it is no)
    "has_multiplayer": (("Do you enjoy playing games with multiplayer?",
                         "Do you like to play with other people online?"),
                        ("Do you prefer single-player games?",
                         "Do you like games without multiplayer?")),
    "available_on_steam": (("Do you buy a lot of games on Steam?",
                            "Do you play many games that are on Steam?"),
                           ("Do you often play games that aren't on Steam?",)),
    "has_linux_release": (("Do you usually play games on Linux?",
                           "Do you look for games with a Linux release?"),
                          ("Do you mostly play games without a Linux version?",)),
    "has_mac_release": (("Do you play a lot of games on Mac?",
                         "Do you care whether a game has a Mac version?"),
                        ("Do you mostly play games that have no Mac release?",)),
}

ASK: dict[str, tuple[str, ...]] = {
    "platforms": ("what platforms do you play on?", "which gaming platform do you prefer?",
                  "what system do you usually play games on?",
                  "what do you usually play your games on?"),
    "player_perspective": ("what perspective do you prefer in games?",
                           "do you like first-person or third-person games better?",
                           "what kind of camera view do you like in a game?"),
    "genres": ("what genres do you like?", "what kind of games do you usually play?",
               "what's your favorite genre?", "what types of games do you enjoy most?"),
    "has_multiplayer": ("do you prefer games with multiplayer?",
                        "do you like playing with other people or alone?",
                        "how do you feel about multiplayer games?"),
    "esrb": ("what age rating do the games you play usually have?",
             "does a game's ESRB rating matter to you?",
             "do you prefer games rated for mature audiences or for everyone?"),
    "developer": ("do you have a favorite game developer?",
                  "which studio makes your favorite games?",
                  "are there any developers whose games you always buy?"),
    "release_year": ("do you prefer older games or newer releases?",
                     "from what year are most of the games you like?",
                     "what era of games do you like best?"),
    "rating": ("do you care what critics think of a game?",
               "how important are review scores to you?"),
    "available_on_steam": ("do you buy your games on Steam?", "do you use Steam?",
                           "is it important to you that a game is on Steam?"),
    "has_linux_release": ("do you play games on Linux?", "is Linux support important to you?"),
    "has_mac_release": ("do you play games on a Mac?", "do you need games to run on Mac?"),
}
LEADS = ("", "", "So, ", "Just curious, ", "Tell me, ", "I'm curious: ", "By the way, ",
          "Out of interest, ")
