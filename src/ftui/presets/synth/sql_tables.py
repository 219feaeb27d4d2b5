"""Spider-style tables (real names such as ``singer``, ``head``) and the joins between them.

Data only, for ``sql.py``. A link joins a parent (``stadium``) to a child that points at it
(``concert.stadium_id``); its phrases let a question walk the join in either direction:
"stadiums *that hosted concerts* in 2014", "concerts *held at* stadiums in Glasgow".
"""

from __future__ import annotations

from dataclasses import dataclass

from ftui.presets.synth.sql_pools import YEAR, Col, n, t


@dataclass(frozen=True)
class Table:
    """A Spider-style table with a real name."""

    name: str
    entity: str
    entities: str
    cols: tuple[Col, ...]


@dataclass(frozen=True)
class Link:
    """``child.fk`` references ``parent.pk``."""

    parent: str
    child: str
    pk: str
    fk: str
    down: str
    """Describes parents by their children: "that hosted concerts" (+ a child condition)."""
    up: str
    """Describes children by their parent: "held at" (+ a parent or its description)."""


def ident(name: str) -> Col:
    return Col(name, span=(1, 30, 1), ident=True)


AGE = {"most": ("oldest",), "least": ("youngest",)}

TABLES: tuple[Table, ...] = (
    Table("singer", "singer", "singers", (
        ident("singer_id"), t("name", "@person", key=True),
        t("country", "@country", rel=("from {v}",)), n("age", 18, 70, **AGE),
        t("song_name", "@title", label="song name"),
        n("song_release_year", 1980, 2016, label="song release year", **YEAR),
    )),
    Table("concert", "concert", "concerts", (
        ident("concert_id"),
        t("concert_name", ("Super bootcamp", "Home Visits", "Week 1", "Week 2", "Auditions",
                           "Live Finals", "Summer Jam", "Winter Gala"), key=True,
          label="concert name"),
        t("theme", ("Free choice", "Bleeding Love", "Wide Awake", "Happy Tonight",
                    "Party All Night", "Acoustic Night")),
        ident("stadium_id"), n("year", 2010, 2016, rel=("in {v}",), **YEAR),
    )),
    Table("stadium", "stadium", "stadiums", (
        ident("stadium_id"),
        t("name", ("Stark's Park", "Somerset Park", "Hampden Park", "Glebe Park",
                   "Recreation Park", "Balmoor", "Forthbank Stadium", "Gayfield Park",
                   "Bayview Stadium"), key=True),
        t("location", ("Kirkcaldy", "Ayr", "Glasgow", "Brechin", "Peterhead", "Stirling",
                       "Arbroath", "Methil"), rel=("in {v}", "located in {v}")),
        n("capacity", 2000, 52000, 100, most=("largest",), least=("smallest",)),
        n("average", 300, 5000, 10, label="average attendance",
          plural="average attendances"),
    )),
    Table("singer_in_concert", "performance", "performances", (
        n("concert_id", 1, 12, label="concert ID", plural="concert IDs",
          rel=("in concert {v}",)),
        ident("singer_id"),
    )),
    Table("department", "department", "departments", (
        ident("department_id"),
        t("name", ("State", "Treasury", "Defense", "Justice", "Interior", "Agriculture",
                   "Commerce", "Labor", "Transportation", "Energy", "Education",
                   "Veterans Affairs", "Homeland Security"), key=True),
        n("creation", 1789, 2002, label="creation year", plural="creation years", **YEAR),
        n("ranking", 1, 15), n("budget_in_billions", 5, 600, label="budget in billions",
                               plural="budgets in billions"),
        n("num_employees", 4000, 3000000, 1000, label="number of employees",
          plural="numbers of employees"),
    )),
    Table("head", "head", "heads", (
        ident("head_id"), t("name", "@person", key=True),
        t("born_state", ("California", "Delaware", "Connecticut", "Florida", "Alabama",
                         "Texas", "Ohio"), label="born state", rel=("born in {v}",)),
        n("age", 40, 75, **AGE),
    )),
    Table("management", "management record", "management records", (
        ident("department_id"), ident("head_id"),
        t("temporary_acting", ("Yes", "No"), label="temporary acting value",
          plural="temporary acting values"),
    )),
    Table("employee", "employee", "employees", (
        ident("employee_id"), t("name", "@person", key=True), n("age", 20, 65, **AGE),
        t("city", "@city", rel=("from {v}", "who live in {v}")),
    )),
    Table("evaluation", "evaluation", "evaluations", (
        ident("employee_id"),
        n("year_awarded", 2010, 2018, label="year awarded", plural="years awarded",
          rel=("in {v}",), **YEAR),
        n("bonus", 500, 5000, 100, label="bonus amount", plural="bonus amounts"),
    )),
    Table("shop", "shop", "shops", (
        ident("shop_id"),
        t("name", ("FC Haka", "HJK", "FC Honka", "FC Inter", "FF Jaro", "FC KooTeePee",
                   "KuPS", "FC Lahti", "IFK Mariehamn"), key=True),
        t("location", ("Valkeakoski", "Helsinki", "Espoo", "Turku", "Jakobstad", "Kotka",
                       "Kuopio", "Lahti", "Mariehamn"), rel=("in {v}", "located in {v}")),
        n("number_products", 500, 15000, 100, label="number of products",
          plural="numbers of products"),
        t("manager_name", "@person", label="manager name", rel=("managed by {v}",)),
    )),
    Table("hiring", "hiring record", "hiring records", (
        ident("shop_id"), ident("employee_id"),
        n("start_from", 2003, 2013, label="start year", plural="start years",
          rel=("starting in {v}",), **YEAR),
        t("is_full_time", ("T", "F"), label="full-time flag", plural="full-time flags"),
    )),
    Table("student", "student", "students", (
        ident("student_id"), t("name", "@person", key=True),
        t("major", ("Computer Science", "Economics", "Biology", "History", "Mathematics",
                    "Physics", "Music", "Chemistry"), rel=("majoring in {v}",)),
        n("age", 17, 30, **AGE),
        t("city_code", ("BAL", "PIT", "NYC", "HKG", "WAS", "PHL", "CHI"), label="city code"),
        t("sex", ("M", "F")),
    )),
    Table("course", "course", "courses", (
        ident("course_id"),
        t("title", ("Intro to Databases", "Organic Chemistry", "Linear Algebra",
                    "World History", "Microeconomics", "Music Theory", "Genetics",
                    "Quantum Mechanics", "Operating Systems"), key=True),
        t("dept_name", ("Comp. Sci.", "Biology", "History", "Finance", "Music", "Physics",
                        "Elec. Eng."), label="department name", rel=("offered by {v}",)),
        n("credits", 2, 5, plural="credits"),
    )),
    Table("enrollment", "enrollment", "enrollments", (
        ident("student_id"), ident("course_id"),
        t("grade", ("A", "A-", "B+", "B", "B-", "C", "F")),
        n("year", 2015, 2023, rel=("in {v}",), **YEAR),
        t("semester", ("Fall", "Spring", "Summer"), rel=("in the {v} semester",)),
    )),
    Table("airline", "airline", "airlines", (
        ident("airline_id"),
        t("name", ("United Airlines", "Delta Airlines", "JetBlue Airways", "Virgin America",
                   "US Airways", "AirTran Airways", "Southwest Airlines", "Allegiant Air",
                   "Frontier Airlines"), key=True),
        t("abbreviation", ("UAL", "Delta", "JetBlue", "Virgin", "USAir", "AirTran",
                           "Southwest", "Allegiant", "Frontier")),
        t("country", ("USA", "Canada", "Mexico", "UK"), rel=("based in {v}",)),
    )),
    Table("flight", "flight", "flights", (
        n("flight_no", 1, 999, label="flight number", plural="flight numbers"),
        ident("airline_id"),
        t("origin", "@city", rel=("from {v}", "departing from {v}")),
        t("destination", "@city", rel=("to {v}", "arriving in {v}")),
        n("distance", 100, 5000, 10, most=("longest",), least=("shortest",)),
        n("price", 50, 1500, 5, most=("most expensive",), least=("cheapest",)),
    )),
    Table("club", "club", "clubs", (
        ident("club_id"),
        t("name", ("Riverside FC", "Harbor United", "Northside Athletic", "Valley Rovers",
                   "Eastbrook City", "Kingsport Town", "Westfield Wanderers"), key=True),
        t("region", ("UK", "USA", "France", "Brazil", "Japan", "Korea", "Russia"),
          rel=("from {v}", "in {v}")),
        n("start_year", 1880, 2000, label="start year", plural="start years", **YEAR),
    )),
    Table("player", "player", "players", (
        ident("player_id"), t("name", "@person", key=True),
        t("position", ("Forward", "Midfielder", "Defender", "Goalkeeper", "Winger"),
          rel=("playing as {v}",)),
        n("apps", 0, 300, label="appearances", plural="appearances", countable=True),
        n("goals", 0, 150, countable=True), ident("club_id"),
    )),
    Table("artist", "artist", "artists", (
        ident("artist_id"), t("name", "@person", key=True),
        t("country", "@country", rel=("from {v}",)),
        n("year_join", 1990, 2010, label="year joined", plural="years joined", **YEAR),
        n("age", 25, 70, **AGE),
    )),
    Table("exhibition", "exhibition", "exhibitions", (
        ident("exhibition_id"), n("year", 2004, 2020, rel=("in {v}",), **YEAR),
        t("theme", ("Santa Claus", "Christmas stocking", "Summer", "Spring", "Autumn",
                    "Christmas Tree", "Portraits", "Landscapes"), rel=("themed {v}",)),
        ident("artist_id"),
        n("ticket_price", 10, 40, label="ticket price", plural="ticket prices"),
    )),
    Table("ship", "ship", "ships", (
        ident("ship_id"),
        t("name", ("HMS Atalanta", "HMS Bacchus", "HMS Boxer", "HMS Leopard", "HMS Undine",
                   "HMS Rhadamanthus", "HM Cutter Avenger", "HMS Mistletoe",
                   "HMS Cheerful"), key=True),
        t("type", ("Panamax", "Cargo ship", "Frigate", "Brig", "Schooner", "Corvette")),
        n("built_year", 1850, 1998, label="built year", plural="built years", **YEAR),
        n("tonnage", 1000, 80000, 100),
        t("nationality", ("United Kingdom", "United States", "Malta", "Panama", "Liberia"),
          rel=("from {v}", "registered in {v}")),
    )),
    Table("captain", "captain", "captains", (
        ident("captain_id"), t("name", "@person", key=True), ident("ship_id"),
        n("age", 30, 65, **AGE),
        t("rank", ("Commander, junior captain", "Captain", "Lieutenant", "Midshipman",
                   "Commodore")),
        t("class", ("Frigate", "Third-rate ship of the line", "Sloop-of-war",
                    "Armed schooner", "Cutter")),
    )),
    Table("mountain", "mountain", "mountains", (
        ident("mountain_id"),
        t("name", ("Kibo (Uhuru Pk)", "Mount Kenya (Batian)", "Mawenzi (Hans Meyer Pk)",
                   "Mount Stanley (Margherita Pk)", "Mount Meru", "Ras Dashen",
                   "Mount Elgon", "Mount Karisimbi"), key=True),
        n("height", 3000, 6000, 10, most=("tallest", "highest"), least=("lowest",)),
        n("prominence", 500, 5000, 10),
        t("range", ("Kilimanjaro", "Mount Kenya", "Rwenzori", "Semien Mountains",
                    "Virunga Mountains", "Arusha Region"), rel=("in the {v} range",)),
        t("country", ("Tanzania", "Kenya", "Uganda", "DR Congo", "Ethiopia", "Rwanda"),
          rel=("in {v}",)),
    )),
    Table("climber", "climber", "climbers", (
        ident("climber_id"), t("name", "@person", key=True),
        t("country", ("West Germany", "Switzerland", "Italy", "Austria", "Poland"),
          rel=("from {v}",)),
        t("time", ("1:13.05.6", "1:21.35.6", "1:25.02.8", "1:27.28.8", "1:30.11.2")),
        n("points", 1, 20, countable=True, plural="points"), ident("mountain_id"),
    )),
    Table("county", "county", "counties", (
        ident("county_id"),
        t("county_name", ("Howard", "Baltimore County", "Colony", "Mansfield", "Manning"),
          key=True, label="county name"),
        n("population", 10000, 900000, 1000, countable=True),
        t("zip_code", ("D21", "D08", "D02", "D09", "D11"), label="zip code"),
    )),
    Table("election", "delegate", "delegates", (
        ident("election_id"), ident("district"),
        t("delegate", "@person", key=True, label="name"),
        t("party", ("Democratic", "Republican", "Liberal", "Working Families",
                    "Independence"), rel=("from the {v} party",)),
        n("first_elected", 1994, 2006, label="first elected year",
          plural="first elected years", **YEAR),
        t("committee", ("Appropriations", "Economic Matters", "Judiciary", "Ways and Means",
                        "Health and Government Operations", "Environmental Matters"),
          rel=("on the {v} committee",)),
    )),
    Table("orchestra", "orchestra", "orchestras", (
        ident("orchestra_id"),
        t("orchestra", ("London Symphony Orchestra", "Chicago Symphony Orchestra",
                        "Berlin Philharmonic", "Royal Concertgebouw Orchestra",
                        "Kirov Orchestra", "Detroit Symphony Orchestra",
                        "Montreal Symphony Orchestra", "Vienna Philharmonic"), key=True,
          label="orchestra name"),
        ident("conductor_id"),
        t("record_company", ("Decca Records", "EMI", "Deutsche Grammophon", "Philips",
                             "RCA", "Sony Classical", "Mercury Records"),
          label="record company", plural="record companies", rel=("signed to {v}",)),
        n("year_of_founded", 1840, 2008, label="founding year", plural="founding years",
          **YEAR),
        t("major_record_format", ("CD", "CD / LP", "DVD", "LP"),
          label="major record format"),
    )),
    Table("conductor", "conductor", "conductors", (
        ident("conductor_id"), t("name", "@person", key=True), n("age", 28, 75, **AGE),
        t("nationality", "@country", rel=("from {v}",)),
        n("year_of_work", 1, 40, label="years of work", plural="years of work",
          countable=True),
    )),
)

LINKS: tuple[Link, ...] = (
    Link("stadium", "concert", "stadium_id", "stadium_id", "that hosted concerts", "held at"),
    Link("singer", "singer_in_concert", "singer_id", "singer_id", "who performed", "by"),
    Link("head", "management", "head_id", "head_id", "with a management record", "for"),
    Link("department", "management", "department_id", "department_id",
         "with a management record", "for"),
    Link("employee", "evaluation", "employee_id", "employee_id", "who were awarded bonuses",
         "for"),
    Link("shop", "hiring", "shop_id", "shop_id", "that hired employees", "at"),
    Link("employee", "hiring", "employee_id", "employee_id", "who were hired", "of"),
    Link("student", "enrollment", "student_id", "student_id", "who took courses", "by"),
    Link("course", "enrollment", "course_id", "course_id", "taken by students", "in"),
    Link("airline", "flight", "airline_id", "airline_id", "that operate flights",
         "operated by"),
    Link("club", "player", "club_id", "club_id", "with players", "at"),
    Link("artist", "exhibition", "artist_id", "artist_id", "who held exhibitions", "by"),
    Link("ship", "captain", "ship_id", "ship_id", "with captains", "serving on"),
    Link("mountain", "climber", "mountain_id", "mountain_id", "climbed by climbers", "on"),
    Link("county", "election", "county_id", "district", "with delegates", "from"),
    Link("conductor", "orchestra", "conductor_id", "conductor_id", "who conduct orchestras",
         "conducted by"),
)

TABLE_BY_NAME: dict[str, Table] = {table.name: table for table in TABLES}
