"""The ViGGO meaning-representation vocabulary (GEM/viggo; Juraska et al., 2019).

Nine dialogue-act functions and fourteen attributes, as they appear in the dataset.
Three attributes hold lists (``genres[action-adventure, role-playing]``); the others hold
one value each, which may contain commas (``developer[Spectrum HoloByte, Inc.]``).
"""

from __future__ import annotations

FUNCTIONS: tuple[str, ...] = (
    "inform",
    "request",
    "give_opinion",
    "confirm",
    "verify_attribute",
    "suggest",
    "request_explanation",
    "recommend",
    "request_attribute",
)

ATTRIBUTES: tuple[str, ...] = (
    "name",
    "release_year",
    "exp_release_date",
    "developer",
    "esrb",
    "rating",
    "genres",
    "player_perspective",
    "platforms",
    "available_on_steam",
    "has_linux_release",
    "has_mac_release",
    "specifier",
    "has_multiplayer",
)

LIST_ATTRIBUTES: tuple[str, ...] = ("genres", "platforms", "player_perspective")
"""The attributes whose value is a comma-separated list of items, order-insensitive."""
