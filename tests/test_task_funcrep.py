"""The funcrep task: ViGGO meaning-representation parsing and scoring."""

from __future__ import annotations

import pytest

from ftui.core.errors import ConfigError
from ftui.core.tasks import make_task
from ftui.core.tasks.funcrep import FuncrepTask, MRParseError, parse_mr

# Five slots: name, three genres, rating.
REF = (
    "inform(name[Tom Clancy's The Division (2016)], "
    "genres[action-adventure, role-playing, shooter], rating[good])"
)


def score(prediction: str, reference: str = REF):
    return FuncrepTask().score(prediction, reference, {})


# --- parser -------------------------------------------------------------------------------


def test_parse_brackets_delimit_values_with_parentheses_and_lists() -> None:
    mr = parse_mr(REF)
    assert mr.function == "inform"
    assert dict(mr.attributes) == {
        "name": ("Tom Clancy's The Division (2016)",),
        "genres": ("action-adventure", "role-playing", "shooter"),
        "rating": ("good",),
    }


def test_parse_commas_inside_parentheses_and_thousands_do_not_split() -> None:
    mr = parse_mr(
        "give_opinion(name[Warhammer 40,000: Dawn of War II], "
        "esrb[E 10+ (for Everyone, 10 and Older)], platforms[PC, Xbox])"
    )
    assert mr.attributes["name"] == ("Warhammer 40,000: Dawn of War II",)
    assert mr.attributes["esrb"] == ("E 10+ (for Everyone, 10 and Older)",)
    assert mr.attributes["platforms"] == ("PC", "Xbox")


def test_parse_empty_brackets_and_no_attributes() -> None:
    assert parse_mr("request_attribute(player_perspective[])").attributes == {
        "player_perspective": ()
    }
    assert dict(parse_mr("  request ( )  ").attributes) == {}


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("inform(name[Little Big Adventure, rating[good])", "unclosed '[' of attribute 'name'", 11),
        ("inform(name[x], rating[good]", "missing ')'", 28),
        ("inform name[x]", "expected '(' after function name 'inform'", 7),
        ("inform(name[x]) and more", "unexpected text after the closing ')'", 16),
        ("inform(name[x], name[y])", "duplicate attribute 'name'", 16),
        ("inform(name[x] rating[y])", "expected ',' or ')', found 'r'", 15),
        ("", "empty output", 0),
        ("(name[x])", "expected a function name, found '('", 0),
    ],
)
def test_parse_errors_carry_position(text: str, message: str, position: int) -> None:
    with pytest.raises(MRParseError) as info:
        parse_mr(text)
    assert isinstance(info.value, ValueError)
    assert info.value.position == position
    assert message in str(info.value)
    assert f"column {position + 1}" in str(info.value)


# --- score and aggregate ------------------------------------------------------------------


def test_exact_ignores_order_of_attributes_list_items_case_and_spacing() -> None:
    s = score(
        "inform(rating[Good], genres[shooter,  role-playing, action-adventure], "
        "name[tom clancy's  the division (2016)])"
    )
    assert s.valid and s.exact and s.error is None
    assert s.details == {"function_correct": True, "tp": 5, "fp": 0, "fn": 0, "exact_strict": False}


def test_wrong_value_is_one_false_positive_and_one_miss() -> None:
    s = score(
        "inform(name[Tom Clancy's The Division (2016)], "
        "genres[action-adventure, role-playing, shooter], rating[poor])"
    )
    assert s.valid and not s.exact
    assert s.details == {"function_correct": True, "tp": 4, "fp": 1, "fn": 1, "exact_strict": False}


def test_missing_slot_keeps_precision_and_lowers_recall() -> None:
    task = FuncrepTask()
    s = task.score(
        "inform(name[Tom Clancy's The Division (2016)], "
        "genres[action-adventure, role-playing], rating[good])",
        REF,
        {},
    )
    assert s.valid and not s.exact
    metrics = task.aggregate([s])
    assert metrics["slot_precision"] == 1.0
    assert metrics["slot_recall"] == pytest.approx(4 / 5)
    assert metrics["slot_f1"] == pytest.approx(2 * 0.8 / 1.8)


def test_extra_slot_lowers_precision() -> None:
    task = FuncrepTask()
    s = task.score(REF[:-1] + ", has_multiplayer[yes])", REF, {})
    assert s.valid and not s.exact
    metrics = task.aggregate([s])
    assert metrics["slot_precision"] == pytest.approx(5 / 6)
    assert metrics["slot_recall"] == 1.0


def test_wrong_function_with_right_slots() -> None:
    s = score(REF.replace("inform", "give_opinion"))
    assert s.valid and not s.exact
    assert s.details == {"function_correct": False, "tp": 5, "fp": 0, "fn": 0, "exact_strict": False}


def test_attribute_not_allowed_is_invalid_but_still_scored() -> None:
    s = score(REF[:-1] + ", price[cheap])")
    assert not s.valid and not s.exact
    assert s.error == "attribute 'price' is not allowed"
    assert s.details == {"function_correct": True, "tp": 5, "fp": 1, "fn": 0, "exact_strict": False}


def test_unknown_function_is_invalid_and_wrong() -> None:
    s = score(REF.replace("inform", "describe"))
    assert not s.valid and not s.exact
    assert s.error == "unknown function 'describe'"
    assert s.details["function_correct"] is False


@pytest.mark.parametrize(
    "prediction",
    [
        "inform(name[Tom Clancy's The Division (2016)], rating[good]",
        "inform(name[Tom Clancy's The Division (2016), rating[good])",
        REF + " I hope this helps!",
        "",
        "The Division is a good action game.",
    ],
)
def test_unparsable_output_misses_every_reference_slot(prediction: str) -> None:
    s = score(prediction)
    assert not s.valid and not s.exact
    assert s.error is not None and s.error.startswith("does not parse: ")
    assert s.details == {"function_correct": False, "tp": 0, "fp": 0, "fn": 5, "exact_strict": False}


def test_fenced_answer_is_exact_once_the_fence_is_stripped() -> None:
    s = score(f"```\n{REF}\n```")
    assert s.valid and s.exact
    assert score(f"  ```text\n{REF}\n```  ").exact


def test_reference_that_does_not_parse_is_an_error_not_a_match() -> None:
    s = score(REF, reference="inform(name[x]")
    assert s.valid and not s.exact
    assert s.error is not None and s.error.startswith("reference does not parse: ")


def test_aggregate_micro_averages_slots_by_hand() -> None:
    task = FuncrepTask()
    scores = [
        task.score(REF, REF, {}),  # tp 5
        task.score(REF.replace(", shooter", ""), REF, {}),  # tp 4, fn 1
        task.score(REF[:-1] + ", has_multiplayer[yes])", REF, {}),  # tp 5, fp 1
        task.score("not an MR", REF, {}),  # fn 5
    ]
    metrics = task.aggregate(scores)
    assert list(metrics) == list(task.metric_keys)
    # tp 14, fp 1, fn 6 -> P 14/15, R 14/20, F1 = 2tp / (2tp + fp + fn) = 28/35.
    assert metrics == pytest.approx(
        {
            "valid": 3 / 4,
            "exact": 1 / 4,
            "exact_strict": 1 / 4,
            "function_accuracy": 3 / 4,
            "slot_precision": 14 / 15,
            "slot_recall": 14 / 20,
            "slot_f1": 28 / 35,
        }
    )


def test_aggregate_of_nothing_is_zero_not_a_division_error() -> None:
    task = FuncrepTask()
    assert task.aggregate([]) == dict.fromkeys(task.metric_keys, 0.0)
    assert task.aggregate([task.score("", REF, {})])["slot_precision"] == 0.0


def test_make_task_with_preset_lists_restricts_validity() -> None:
    task = make_task("funcrep", {"functions": ["inform"], "attributes": ["name", "rating"]})
    assert task.score("inform(name[x], rating[good])", "inform(name[x], rating[good])", {}).valid
    s = task.score("confirm(name[x])", "inform(name[x])", {})
    assert not s.valid and s.error == "unknown function 'confirm'"
    assert not task.score("inform(genres[rpg])", "inform(name[x])", {}).valid


@pytest.mark.parametrize(
    "options",
    [{"functions": "inform"}, {"attributes": []}, {"functions": ["inform", 3]}, {"speed": 1},
     {"list_attributes": "genres"}, {"list_attributes": ["genres", "price"]}],
)
def test_bad_options_are_config_errors(options: dict) -> None:
    with pytest.raises(ConfigError):
        make_task("funcrep", options)


def test_strict_exact_needs_the_gold_order_and_normalises_only_whitespace() -> None:
    assert score(REF).details["exact_strict"] is True
    assert score("  " + REF.replace(", ", ",  ") + "\n").details["exact_strict"] is True
    lower = score(REF.replace("Division", "division"))
    assert lower.exact and not lower.details["exact_strict"]  # case counts for strict
    reordered = score("inform(rating[good], name[Tom Clancy's The Division (2016)], "
                      "genres[action-adventure, role-playing, shooter])")
    assert reordered.exact and not reordered.details["exact_strict"]
    metrics = FuncrepTask().aggregate([score(REF), reordered])
    assert metrics["exact"] == 1.0 and metrics["exact_strict"] == 0.5


# --- list-valued attributes: only genres, platforms and player_perspective ------------------

# GEM/viggo-style rows whose single values hold commas.
RELEASE = ("inform(name[Mario Tennis Aces], exp_release_date[June 29, 2018], "
           "genres[sport], player_perspective[third person], platforms[Nintendo Switch])")
DEVELOPER = ("inform(name[Falcon 4.0], release_year[1998], developer[Spectrum HoloByte, Inc.], "
             "genres[simulation], player_perspective[first person], platforms[PC])")
DIVISION = ("inform(name[Tom Clancy's The Division], release_year[2016], esrb[M (for Mature)], "
            "genres[action-adventure, role-playing, shooter, tactical], player_perspective[third person], "
            "platforms[PlayStation, Xbox, PC], available_on_steam[yes], has_linux_release[no], "
            "has_mac_release[no])")


def test_a_value_with_commas_is_one_value_unless_the_attribute_is_a_list() -> None:
    mr = parse_mr(DEVELOPER)
    assert mr.attributes["developer"] == ("Spectrum HoloByte, Inc.",)
    assert parse_mr(RELEASE).attributes["exp_release_date"] == ("June 29, 2018",)
    assert parse_mr(DIVISION).attributes["platforms"] == ("PlayStation", "Xbox", "PC")
    assert len(parse_mr(DIVISION).slots()) == 4 + 1 + 3 + 6  # genres 4, perspective 1, platforms 3, six others


@pytest.mark.parametrize(("reference", "swapped"), [
    (RELEASE, RELEASE.replace("June 29, 2018", "2018, June 29")),
    (DEVELOPER, DEVELOPER.replace("Spectrum HoloByte, Inc.", "Inc., Spectrum HoloByte")),
])
def test_reordered_parts_of_one_value_are_not_exact(reference: str, swapped: str) -> None:
    s = FuncrepTask().score(swapped, reference, {})
    assert s.valid and not s.exact
    assert (s.details["tp"], s.details["fp"], s.details["fn"]) == (len(parse_mr(reference).slots()) - 1, 1, 1)


def test_list_attributes_compare_as_sets() -> None:
    ref = "give_opinion(name[Fallout 4], rating[excellent], genres[action-adventure, role-playing])"
    s = FuncrepTask().score(ref.replace("action-adventure, role-playing", "role-playing, action-adventure"), ref, {})
    assert s.exact and not s.details["exact_strict"]
    swapped = DIVISION.replace("PlayStation, Xbox, PC", "PC, PlayStation, Xbox").replace(
        "first person", "third person")
    assert FuncrepTask().score(swapped, DIVISION, {}).exact


def test_single_values_normalise_case_and_spacing_around_commas() -> None:
    assert FuncrepTask().score(DEVELOPER.replace("Spectrum HoloByte, Inc.", "spectrum holobyte ,inc."),
                               DEVELOPER, {}).exact


def test_slot_f1_counts_a_developer_with_several_commas_as_one_slot() -> None:
    ref = ("inform(name[SimCity 2000], release_year[1993], "
           "developer[Maxis Software, Inc., Walnut Creek], platforms[PC, Mac])")
    assert len(parse_mr(ref).slots()) == 5  # name, year, developer, PC, Mac
    task = FuncrepTask()
    s = task.score(ref.replace(", Walnut Creek", ""), ref, {})
    assert not s.exact
    assert (s.details["tp"], s.details["fp"], s.details["fn"]) == (4, 1, 1)
    metrics = task.aggregate([s])
    assert metrics["slot_precision"] == pytest.approx(4 / 5) and metrics["slot_recall"] == pytest.approx(4 / 5)


def test_list_attributes_is_a_task_option() -> None:
    ref = "inform(name[Fallout 4], genres[action-adventure, role-playing])"
    reordered = "inform(name[Fallout 4], genres[role-playing, action-adventure])"
    assert make_task("funcrep", {}).score(reordered, ref, {}).exact
    as_one_value = make_task("funcrep", {"list_attributes": []})
    assert not as_one_value.score(reordered, ref, {}).exact
    assert as_one_value.score(ref, ref, {}).details["tp"] == 2
