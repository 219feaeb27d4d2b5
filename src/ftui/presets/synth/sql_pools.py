"""Value pools and WikiSQL-style domains for the synthetic sql-create-context sample.

Data only (the question builder is ``sql.py``). A column's ``values`` is either a tuple of
strings or the name of a shared pool in ``POOLS`` (``"@person"``); numeric columns carry a
``span`` instead. No value may equal a column name: the dataset writes string literals in
double quotes, and SQLite reads ``"x"`` as the column ``x`` when one exists.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Col:
    """One column of a synthetic table and how questions talk about it."""

    name: str
    values: tuple[str, ...] | str = ()
    """Text values, or a ``POOLS`` key such as ``"@person"``; empty for numeric columns."""
    span: tuple[int, int, int] | None = None
    """Numeric columns: (low, high, step) for sampled values; thresholds use the step."""
    label: str = ""
    """How questions name the column; defaults to the name with spaces."""
    plural: str = ""
    rel: tuple[str, ...] = ()
    """Extra ways to describe an entity by value, e.g. ``"from {v}"``."""
    gt: tuple[str, ...] = ()
    """Comparison words for ``>`` (``"after"`` for years); defaults in sql.py."""
    lt: tuple[str, ...] = ()
    most: tuple[str, ...] = ()
    """Superlatives for MAX / ORDER BY DESC (``"oldest"`` for age); defaults in sql.py."""
    least: tuple[str, ...] = ()
    temporal: bool = False
    """A year: compared with "after"/"before", never summed."""
    countable: bool = False
    """Reads as a count ("more than 5 wins", "total attendance")."""
    key: bool = False
    """The column that names the entity (player, title, name)."""
    ident: bool = False
    """A join key: never asked about, only joined on."""

    @property
    def numeric(self) -> bool:
        return self.span is not None

    @property
    def sql_type(self) -> str:
        return "INTEGER" if self.span is not None else "VARCHAR"


@dataclass(frozen=True)
class Domain:
    """A WikiSQL-style table (named ``table_name_N`` in the context)."""

    entity: str
    entities: str
    cols: tuple[Col, ...]
    past: bool = True
    """Questions mostly in the past tense ("What was the score when ...")."""
    who: bool = False
    """The entity is a person ("Who was the player ...")."""


def t(name: str, values: tuple[str, ...] | str, **kw: object) -> Col:
    return Col(name, values=values, **kw)  # type: ignore[arg-type]


def n(name: str, lo: int, hi: int, step: int = 1, **kw: object) -> Col:
    return Col(name, span=(lo, hi, step), **kw)  # type: ignore[arg-type]


YEAR = {"temporal": True, "gt": ("after", "later than"), "lt": ("before", "earlier than"),
        "most": ("latest", "most recent"), "least": ("earliest", "first")}
RANKING = {"gt": ("greater than", "larger than", "higher than"),
           "lt": ("less than", "smaller than", "lower than")}

POOLS: dict[str, tuple[str, ...]] = {
    "@first": ("James", "Maria", "John", "Anna", "Robert", "Laura", "Michael", "Sarah", "David",
               "Elena", "Thomas", "Julia", "Daniel", "Sofia", "Mark", "Claire", "Kevin", "Nina",
               "Brian", "Emma", "Carlos", "Yuki", "Ahmed", "Lucas", "Marco", "Ingrid", "Pierre",
               "Hannah", "Victor", "Grace", "Tony", "Olga", "Sean", "Paulo", "Mikko", "Fiona"),
    "@last": ("Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Wilson",
              "Anderson", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White",
              "Harris", "Clark", "Lewis", "Walker", "Young", "King", "Wright", "Lopez", "Hill",
              "Scott", "Green", "Baker", "Nelson", "Carter", "Mitchell", "Rossi", "Novak",
              "Larsen", "Tanaka", "Dubois", "Fischer", "Kowalski", "O'Brien", "Silva",
              "Petrov", "Jensen", "Murphy", "Haddad", "Moreau", "Lindqvist", "Okafor"),
    "@college": ("Duke", "North Carolina", "Kentucky", "Kansas", "UCLA", "Michigan State",
                 "Ohio State", "Notre Dame", "Syracuse", "Georgetown", "Arizona",
                 "Florida State", "Texas A&M", "Penn State", "Stanford", "LSU", "Oregon",
                 "Wisconsin", "Virginia Tech", "Clemson", "Alabama", "Iowa", "Purdue",
                 "Miami (FL)", "Boston College", "Nebraska", "Tennessee", "USC"),
    "@country": ("United States", "Canada", "France", "Germany", "Spain", "Italy", "Brazil",
                 "Argentina", "Japan", "Australia", "Sweden", "Norway", "Netherlands",
                 "Mexico", "South Korea", "England", "Nigeria", "Poland", "Portugal",
                 "Ireland", "Kenya", "China", "India", "Finland", "Belgium", "Denmark"),
    "@city": ("Chicago", "Boston", "Denver", "Seattle", "Houston", "Atlanta", "Toronto",
              "Montreal", "London", "Paris", "Berlin", "Madrid", "Rome", "Tokyo", "Sydney",
              "Melbourne", "Dublin", "Oslo", "Lisbon", "Vienna", "Prague", "Osaka",
              "Glasgow", "Leeds", "Lyon", "Hamburg", "Seville", "Naples", "Austin", "Phoenix"),
    "@nfl": ("Chicago Bears", "Green Bay Packers", "Dallas Cowboys", "New York Giants",
             "Philadelphia Eagles", "Washington Redskins", "Detroit Lions", "Minnesota Vikings",
             "San Francisco 49ers", "Los Angeles Rams", "Pittsburgh Steelers",
             "Cleveland Browns", "Miami Dolphins", "Buffalo Bills", "Denver Broncos",
             "Kansas City Chiefs", "Oakland Raiders", "Seattle Seahawks", "Atlanta Falcons",
             "New Orleans Saints"),
    "@nhl": ("Montreal Canadiens", "Toronto Maple Leafs", "Boston Bruins", "Detroit Red Wings",
             "New York Rangers", "Chicago Blackhawks", "Philadelphia Flyers",
             "Pittsburgh Penguins", "Edmonton Oilers", "Calgary Flames", "Vancouver Canucks",
             "St. Louis Blues", "Buffalo Sabres", "Los Angeles Kings", "Minnesota North Stars"),
    "@mlb": ("New York Yankees", "Boston Red Sox", "Baltimore Orioles", "Toronto Blue Jays",
             "Detroit Tigers", "Minnesota Twins", "Kansas City Royals", "Seattle Mariners",
             "Oakland Athletics", "Texas Rangers", "Houston Astros", "Chicago White Sox",
             "Cleveland Indians", "Milwaukee Brewers", "Chicago Cubs", "St. Louis Cardinals",
             "Los Angeles Dodgers", "Atlanta Braves"),
    "@afl": ("Carlton", "Collingwood", "Essendon", "Fitzroy", "Footscray", "Geelong",
             "Hawthorn", "Melbourne", "North Melbourne", "Richmond", "St Kilda",
             "South Melbourne"),
    "@club": ("Arsenal", "Chelsea", "Everton", "Liverpool", "Aston Villa", "Leeds United",
              "Newcastle United", "Celtic", "Rangers", "Ajax", "PSV Eindhoven", "Benfica",
              "Porto", "Sevilla", "Valencia", "Lazio", "Napoli", "Marseille", "Lyon",
              "Feyenoord", "Hibernian", "Sporting CP"),
    "@title": ("The Silent Harbor", "Midnight Express", "Paper Moon", "The Long Winter",
               "Broken Arrow", "City of Glass", "Summer Storm", "The Last Letter",
               "Red Horizon", "A Quiet Place", "Echoes", "The Crossing", "Golden Years",
               "Northern Lights", "Blue Valentine", "The Garden", "Wild Hearts",
               "Dark Water", "The Promise", "Lost Highway", "Open Road", "Homecoming",
               "Firefly", "Stranger Tides", "Night Shift", "Silver Lining", "After Hours"),
    "@network": ("ABC", "NBC", "CBS", "Fox", "The CW", "HBO", "BBC One", "ITV", "Channel 4"),
    "@label": ("Columbia", "Atlantic", "Parlophone", "Island", "Virgin", "Def Jam",
               "Sub Pop", "Interscope", "Epic", "Geffen", "Motown", "Capitol", "Warner Bros."),
}

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

POSITIONS_NBA = ("guard", "forward", "center", "point guard", "shooting guard",
                 "small forward", "power forward", "guard-forward", "forward-center")

DOMAINS: tuple[Domain, ...] = (
    Domain("player", "players", who=True, cols=(
        t("player", "@person", key=True),
        t("position", ("quarterback", "running back", "wide receiver", "tight end",
                       "offensive tackle", "guard", "center", "defensive end",
                       "defensive tackle", "linebacker", "cornerback", "safety", "kicker"),
          rel=("who plays {v}", "at {v}")),
        t("college", "@college", rel=("from {v}", "who went to {v}", "who attended {v}")),
        n("round", 1, 12), n("pick", 1, 32), n("overall", 1, 330),
        t("team", "@nfl", rel=("drafted by the {v}", "picked by the {v}")),
    )),
    Domain("player", "players", who=True, cols=(
        t("player", "@person", key=True),
        t("position", ("centre", "left wing", "right wing", "defence", "goaltender"),
          rel=("who plays {v}",)),
        t("nationality", "@country", rel=("from {v}",)),
        t("nhl_team", "@nhl", label="NHL team", plural="NHL teams",
          rel=("drafted by the {v}",)),
        t("college_junior_club_team", ("Ottawa 67's (OHL)", "Kamloops Blazers (WHL)",
                                       "Boston University (NCAA)", "Djurgårdens IF (Sweden)",
                                       "HIFK (Finland)", "Regina Pats (WHL)",
                                       "Sudbury Wolves (OHL)", "Michigan (CCHA)",
                                       "CSKA Moscow (Russia)", "Kitchener Rangers (OHL)"),
          label="college/junior/club team", plural="college/junior/club teams",
          rel=("who played for {v}", "from {v}")),
        n("pick", 1, 250),
    )),
    Domain("player", "players", past=False, who=True, cols=(
        t("player", "@person", key=True),
        n("no", 0, 55, label="number", rel=("wearing number {v}",)),
        t("nationality", "@country", rel=("from {v}",)),
        t("position", POSITIONS_NBA, rel=("who plays {v}",)),
        t("years_in_toronto", ("1995-96", "1996-98", "1999-2001", "2003-05", "2006-07",
                               "2008-2010", "2011-12", "2013-17"), label="years in Toronto",
          plural="years in Toronto"),
        t("school_club_team", "@college", label="school/club team",
          plural="school/club teams", rel=("who played for {v}",)),
    )),
    Domain("game", "games", cols=(
        t("home_team", "@afl"), t("home_team_score", ("12.10 (82)", "8.14 (62)",
                                                      "15.12 (102)", "10.9 (69)",
                                                      "17.20 (122)", "9.11 (65)",
                                                      "13.15 (93)", "11.8 (74)")),
        t("away_team", "@afl"), t("away_team_score", ("7.9 (51)", "14.11 (95)",
                                                      "10.13 (73)", "12.12 (84)",
                                                      "6.14 (50)", "16.9 (105)")),
        t("venue", ("MCG", "Princes Park", "Kardinia Park", "Victoria Park", "Arden Street Oval",
                    "Junction Oval", "Western Oval", "Windy Hill", "Lake Oval",
                    "Glenferrie Oval", "Brunswick Street Oval"), rel=("played at {v}",)),
        n("crowd", 8000, 60000, 500, countable=True, label="crowd", plural="crowds"),
        t("date", "@dmy", rel=("played on {v}",)),
    )),
    Domain("game", "games", cols=(
        n("week", 1, 17), t("date", "@mdy", rel=("on {v}", "played on {v}")),
        t("opponent", "@nfl", rel=("against the {v}",)),
        t("result", ("W 24-17", "L 10-13", "W 31-7", "L 20-27", "W 17-16", "L 3-21",
                     "W 28-14", "T 20-20", "L 14-35")),
        n("attendance", 30000, 80000, 500, countable=True, plural="attendances"),
        t("game_site", ("Soldier Field", "Lambeau Field", "Texas Stadium", "Giants Stadium",
                        "Veterans Stadium", "Candlestick Park", "Mile High Stadium",
                        "Arrowhead Stadium", "Kingdome", "Orange Bowl"),
          rel=("played at {v}",)),
    )),
    Domain("district", "districts", cols=(
        t("district", ("Ohio 3", "Texas 12", "California 7", "New York 15", "Illinois 4",
                       "Florida 22", "Pennsylvania 9", "Georgia 5", "Michigan 14",
                       "Virginia 2", "Tennessee 6", "Indiana 8"), key=True),
        t("incumbent", "@person"),
        t("party", ("Democratic", "Republican")),
        n("first_elected", 1946, 2004, label="first elected", plural="first elected years",
          **YEAR),
        t("result", ("Re-elected", "Retired Democratic hold", "Retired Republican hold",
                     "Lost re-election Republican gain", "Lost re-election Democratic gain",
                     "Retired to run for U.S. Senate")),
    )),
    Domain("film", "films", cols=(
        t("film_title_used_in_nomination", "@title", key=True,
          label="film title used in nomination", plural="film titles used in nomination"),
        t("original_title", ("La Strada Vieja", "Das Leben", "Le Dernier Été", "Il Ritorno",
                             "Kaze no Oto", "O Caminho", "Zimní Světlo", "Nattvakten",
                             "El Silencio", "Sang Merah")),
        t("director", "@person", rel=("directed by {v}",)),
        n("year", 1960, 2015, **YEAR),
        t("language", ("French", "German", "Spanish", "Italian", "Japanese", "Portuguese",
                       "Czech", "Swedish", "Korean", "Polish"), rel=("in {v}",)),
        t("result", ("Nominee", "Not Nominated", "Won Academy Award")),
    )),
    Domain("single", "singles", cols=(
        n("year", 1965, 2015, **YEAR), t("single", "@title", key=True),
        t("chart", ("UK Singles Chart", "US Billboard Hot 100", "Irish Singles Chart",
                    "Canadian Hot 100", "Australian ARIA Chart", "Dutch Top 40")),
        n("peak_position", 1, 100, label="peak position", plural="peak positions", **RANKING),
        t("album", ("Greatest Hits", "Homeward", "Night Drive", "Second Wind",
                    "The Blue Album", "Live at the Roxy", "Non-album single"),
          rel=("from the album {v}", "off {v}")),
        t("label", "@label", label="record label", rel=("released on {v}",)),
    )),
    Domain("driver", "drivers", who=True, cols=(
        t("driver", "@person", key=True),
        t("constructor", ("Ferrari", "McLaren - Mercedes", "Williams - Renault",
                          "Benetton - Ford", "Lotus - Honda", "Tyrrell - Ford",
                          "Brabham - BMW", "Jordan - Peugeot", "Minardi - Ford"),
          rel=("driving for {v}", "with a car from {v}")),
        n("laps", 1, 78, countable=True), t("time_retired", ("+1 lap", "+2 laps",
                                                             "Engine", "Gearbox",
                                                             "Accident", "Spun off",
                                                             "+12.345", "+1:02.511",
                                                             "Electrical"),
                                           label="time/retired", plural="times/retired"),
        n("grid", 1, 26), n("points", 0, 10, countable=True, plural="points"),
    )),
    Domain("episode", "episodes", cols=(
        n("no_in_series", 1, 180, label="number in series", plural="numbers in series"),
        n("no_in_season", 1, 24, label="number in season", plural="numbers in season"),
        t("title", ("Pilot", "The Long Goodbye", "Homecoming", "Crossroads", "Night Shift",
                    "Blood Ties", "The Return", "Fallout", "Second Chances", "Breaking Point",
                    "Family Matters", "The Storm", "Lost and Found", "Endgame"), key=True),
        t("directed_by", "@person", label="director", rel=("directed by {v}",)),
        t("written_by", "@person", label="writer", rel=("written by {v}",)),
        t("original_air_date", "@mdy", label="original air date",
          rel=("that aired on {v}", "first aired on {v}")),
        t("us_viewers__millions_", ("7.45", "10.12", "5.89", "12.30", "8.61", "6.07", "9.94"),
          label="U.S. viewers (millions)", plural="U.S. viewer figures (millions)"),
    )),
    Domain("company", "companies", past=False, cols=(
        n("rank", 1, 500, **RANKING), t("company", ("Toyota", "Siemens", "Nestlé", "Samsung",
                                                    "General Electric", "HSBC", "Unilever",
                                                    "BP", "Allianz", "Walmart", "Sony",
                                                    "Petrobras", "Vodafone", "Novartis"),
                                        key=True),
        t("headquarters", "@country", rel=("headquartered in {v}", "based in {v}")),
        t("industry", ("Banking", "Oil and gas", "Automotive", "Conglomerate", "Retailing",
                       "Telecommunications", "Pharmaceuticals", "Insurance", "Food"),
          rel=("in the {v} industry",)),
        n("sales__billion_", 10, 480, label="sales (billion $)", plural="sales (billion $)"),
        n("profits__billion_", 1, 45, label="profits (billion $)",
          plural="profits (billion $)"),
        n("market_value__billion_", 20, 600, label="market value (billion $)",
          plural="market values (billion $)"),
    )),
    Domain("institution", "institutions", past=False, cols=(
        t("institution", ("Bethel University", "Concordia College", "Hamline University",
                          "Gustavus Adolphus College", "Carleton College", "St. Olaf College",
                          "Augsburg College", "Macalester College", "Luther College",
                          "Wartburg College"), key=True),
        t("location", "@city", rel=("located in {v}", "in {v}")),
        n("founded", 1850, 1970, label="year founded", plural="years founded", **YEAR),
        t("type", ("Private", "Public", "Private/Lutheran", "Private/Catholic")),
        n("enrollment", 800, 30000, 100, plural="enrollments"),
        t("nickname", ("Royals", "Cobbers", "Pipers", "Gusties", "Knights", "Oles", "Auggies",
                       "Scots", "Norse", "Knights of the North")),
        t("conference", ("MIAC", "IIAC", "Big Ten", "Big East", "Pac-12", "ACC")),
    )),
    Domain("airport", "airports", past=False, cols=(
        n("rank", 1, 50, **RANKING), t("airport", ("Heathrow", "Gatwick", "Schiphol",
                                                   "Frankfurt", "Charles de Gaulle", "Barajas",
                                                   "Fiumicino", "Dublin", "Copenhagen",
                                                   "Zurich", "Munich", "Vienna"), key=True),
        t("location", "@city", rel=("in {v}", "serving {v}")),
        n("total_passengers", 1000000, 70000000, 100000, label="total passengers",
          plural="total passengers", countable=True),
        t("annual_change", ("5.3%", "-1.2%", "12.8%", "0.4%", "7.1%", "-3.6%", "2.9%"),
          label="annual change", plural="annual changes"),
        t("capacity_in_use", ("88.5%", "102.3%", "67.9%", "95.0%", "74.2%"),
          label="capacity in use", plural="capacities in use"),
    )),
    Domain("nation", "nations", cols=(
        n("rank", 1, 30, **RANKING), t("nation", "@country", key=True),
        n("gold", 0, 40, countable=True, label="gold", plural="golds"),
        n("silver", 0, 40, countable=True, label="silver", plural="silvers"),
        n("bronze", 0, 40, countable=True, label="bronze", plural="bronzes"),
        n("total", 1, 100, countable=True, label="total", plural="totals"),
    )),
    Domain("match", "matches", cols=(
        t("outcome", ("Winner", "Runner-up")), t("date", "@mdy", rel=("on {v}",)),
        t("tournament", ("Wimbledon", "US Open", "French Open", "Australian Open",
                         "Indian Wells", "Rome", "Hamburg", "Stuttgart", "Queen's Club",
                         "Monte Carlo", "Miami", "Tokyo"), rel=("at {v}", "at the {v} event")),
        t("surface", ("Hard", "Clay", "Grass", "Carpet", "Hard (i)"), rel=("on {v}",)),
        t("opponent", "@person", rel=("against {v}",)),
        t("score", ("6-3, 6-4", "7-6, 4-6, 6-2", "6-1, 6-2", "3-6, 6-3, 7-5", "6-4, 7-6",
                    "4-6, 6-7", "2-6, 6-4, 6-3")),
    )),
    Domain("fight", "fights", cols=(
        t("res", ("Win", "Loss", "Draw", "NC"), label="result"),
        t("record", ("12-3", "8-1", "15-6", "20-4-1", "5-2", "9-9", "17-0")),
        t("opponent", "@person", rel=("against {v}",)),
        t("method", ("KO (punches)", "TKO (doctor stoppage)", "Submission (rear-naked choke)",
                     "Submission (armbar)", "Decision (unanimous)", "Decision (split)")),
        t("event", ("UFC 94", "UFC 112", "Pride 33", "Strikeforce: Nashville", "Bellator 45",
                    "WEC 41", "Cage Rage 20"), rel=("at {v}",)),
        n("round", 1, 5), t("location", "@city", rel=("in {v}",)),
    )),
    Domain("player", "players", who=True, cols=(
        t("place", ("1", "T2", "T3", "5", "T6", "T9", "T11", "15")),
        t("player", "@person", key=True), t("country", "@country", rel=("from {v}",)),
        t("score", ("70-68-71=209", "69-72-70=211", "73-70-68=211", "66-71-74=211",
                    "72-72-69=213")),
        t("to_par", ("-7", "-5", "-3", "-1", "E", "+1", "+3"), label="to par",
          plural="to par values"),
        n("money", 10000, 900000, 1000, label="money ($)", plural="money amounts"),
    )),
    Domain("city", "cities", past=False, cols=(
        t("city", "@city", key=True),
        t("region", ("North", "South", "Central", "East", "West", "Coastal", "Highlands"),
          rel=("in the {v} region",)),
        n("population", 50000, 9000000, 1000, countable=True, plural="populations"),
        n("area_km_2", 40, 3000, label="area (km 2)", plural="areas (km 2)"),
        n("density", 100, 12000, label="density", plural="densities"),
        n("founded", 800, 1900, label="year founded", plural="years founded", **YEAR),
    )),
    Domain("team", "teams", cols=(
        n("position", 1, 20, **RANKING), t("team", "@club", key=True),
        n("played", 20, 46, countable=True, label="games played", plural="games played"),
        n("won", 0, 30, countable=True, label="wins", plural="wins"),
        n("drawn", 0, 15, countable=True, label="draws", plural="draws"),
        n("lost", 0, 30, countable=True, label="losses", plural="losses"),
        n("goals_for", 20, 100, countable=True, label="goals for", plural="goals for"),
        n("goals_against", 15, 90, countable=True, label="goals against",
          plural="goals against"),
        n("points", 10, 98, countable=True, plural="points"),
    )),
    Domain("game", "games", cols=(
        t("date", "@md", rel=("on {v}", "played on {v}")),
        t("opponent", "@mlb", rel=("against the {v}",)),
        t("score", ("5-3", "2-1", "7-4", "10-2", "3-0", "6-5 (10)", "1-4", "8-7")),
        t("loss", ("Johnson (3-4)", "Martinez (10-6)", "Clemens (12-5)", "Wells (7-8)",
                   "Rivera (2-3)", "Moyer (9-9)", "Hudson (5-2)"), label="loss",
          plural="losses"),
        n("attendance", 8000, 56000, 100, countable=True, plural="attendances"),
        t("record", ("45-38", "60-52", "12-10", "81-81", "33-29", "70-45")),
    )),
    Domain("building", "buildings", past=False, cols=(
        t("name", ("Commerce Tower", "One Financial Place", "Harbour Centre", "Plaza Tower",
                   "Meridian House", "Central Park Tower", "Skyline Plaza",
                   "Victoria Court", "Lakeside Centre", "Park Place"), key=True),
        t("city", "@city", rel=("in {v}", "located in {v}")),
        n("height_m", 60, 320, label="height (m)", plural="heights (m)",
          most=("tallest",), least=("shortest",)),
        n("floors", 15, 90, countable=True, plural="floors"),
        n("year", 1960, 2015, label="year completed", plural="years completed", **YEAR),
    )),
    Domain("entry", "entries", cols=(
        n("draw", 1, 25), t("country", "@country", rel=("from {v}",)),
        t("artist", "@person", rel=("performed by {v}", "by {v}")),
        t("song", "@title", key=True),
        t("language", ("English", "French", "Spanish", "German", "Italian", "Portuguese",
                       "Swedish", "Greek", "Croatian", "Hebrew"), rel=("sung in {v}",)),
        n("place", 1, 25, **RANKING), n("points", 0, 250, countable=True, plural="points"),
    )),
    Domain("nomination", "nominations", cols=(
        n("year", 1990, 2015, **YEAR),
        t("award", ("Grammy Award", "Brit Award", "MTV Video Music Award", "Emmy Award",
                    "Golden Globe Award", "Juno Award", "Billboard Music Award"),
          rel=("for the {v}",)),
        t("category", ("Best New Artist", "Best Album", "Best Actress", "Song of the Year",
                       "Best Supporting Actor", "Best Music Video")),
        t("nominated_work", "@title", label="nominated work", plural="nominated works"),
        t("result", ("Won", "Nominated")),
    )),
    Domain("school", "schools", past=False, cols=(
        t("school", ("Lincoln High School", "Washington High School", "Central Catholic",
                     "North Side", "Fairview", "Heritage Hills", "Jasper", "Tecumseh",
                     "Eastern Greene", "Mount Vernon"), key=True),
        t("location", "@city", rel=("in {v}", "located in {v}")),
        t("mascot", ("Eagles", "Tigers", "Wildcats", "Panthers", "Raiders", "Braves",
                     "Patriots", "Spartans", "Bulldogs", "Cougars"),
          rel=("whose mascot is the {v}",)),
        n("enrollment", 150, 2500, 10, plural="enrollments"),
        t("ihsaa_class", ("A", "AA", "AAA", "AAAA"), label="IHSAA class",
          plural="IHSAA classes"),
        t("county", ("Marion", "Lake", "Allen", "Hamilton", "Dubois", "Vigo", "Posey"),
          rel=("in {v} county",)),
    )),
    Domain("stage", "stages", cols=(
        n("stage", 1, 21), t("date", "@dm", rel=("on {v}",)),
        t("course", ("Paris to Lyon", "Nice to Digne", "Pau to Tourmalet", "Grenoble (ITT)",
                     "Bordeaux to Poitiers", "Metz to Nancy", "Avignon to Gap"),
          rel=("from {v}",)),
        n("distance_km", 15, 260, label="distance (km)", plural="distances (km)"),
        t("winner", "@person", rel=("won by {v}",)),
        t("general_classification", "@person", label="general classification",
          plural="general classifications"),
    )),
    Domain("swimmer", "swimmers", who=True, cols=(
        n("rank", 1, 16, **RANKING), n("lane", 1, 8),
        t("name", "@person", key=True), t("nationality", "@country", rel=("from {v}",)),
        t("time", ("1:45.32", "1:46.08", "1:47.91", "52.14", "48.77", "2:01.45", "3:44.60")),
        t("notes", ("Q", "WR", "NR", "OR", "q")),
    )),
)
