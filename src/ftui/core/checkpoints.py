"""Checkpoint folders of a run directory (DESIGN.md, The run directory: ``checkpoints/step-N/``).

Pure file work, beside the run-directory contract: the runner lists checkpoints to resume from
and cleans what a killed runner left, for any backend, without loading the training stack.
The local backend's callback publishes ``step-N`` folders through the same names.

A ``step-N`` folder is complete by construction: the Trainer writes ``checkpoint-N`` and one
rename publishes it; deletion renames to ``.trash-*`` first, so no half-deleted ``step-N`` is
ever seen.
"""

from __future__ import annotations

import shutil
from pathlib import Path

KEEP_CHECKPOINTS = 2
"""Published ``step-N`` folders kept; older ones are deleted as new ones appear."""


def step_of(folder: Path) -> int | None:
    """N of a ``step-N`` folder, None for any other name."""
    prefix, _, suffix = folder.name.partition("-")
    return int(suffix) if prefix == "step" and suffix.isdigit() else None


def published(checkpoints: Path) -> list[tuple[int, Path]]:
    """Every ``step-N`` folder, oldest first."""
    return sorted((n, p) for p in checkpoints.glob("step-*") if (n := step_of(p)) is not None)


def last_checkpoint(checkpoints: Path) -> Path | None:
    """The newest complete ``step-N`` folder (one with its trainer state), if any."""
    found = [(n, p) for n, p in published(checkpoints) if (p / "trainer_state.json").is_file()]
    return found[-1][1] if found else None


def discard(folder: Path) -> None:
    """Delete a checkpoint folder so that no half-deleted ``step-N`` is ever left: rename first."""
    trash = folder.with_name(f".trash-{folder.name}")
    if trash.exists():
        shutil.rmtree(trash, ignore_errors=True)
    folder.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def publish(checkpoints: Path, step: int, *, keep: int = KEEP_CHECKPOINTS, protect: int | None = None) -> Path | None:
    """Publish the Trainer's finished ``checkpoint-N`` as ``step-N`` (one rename) and delete all
    but the newest ``keep`` and ``step-{protect}`` (the best validation pass, whose weights the
    run keeps). Returns the published folder; None when there was nothing to publish."""
    saved = checkpoints / f"checkpoint-{step}"
    if not saved.is_dir():
        return None
    target = checkpoints / f"step-{step}"
    if target.exists():
        discard(target)
    saved.rename(target)
    for n, old in published(checkpoints)[:-keep]:
        if n != protect:
            discard(old)
    return target


def clean_partial(checkpoints: Path) -> list[str]:
    """Remove what a killed runner left half-done: the Trainer's ``checkpoint-N`` folders (not
    yet published as ``step-N``) and ``.trash-*`` folders. Returns their names."""
    removed = []
    if checkpoints.is_dir():
        for p in list(checkpoints.glob("checkpoint-*")) + list(checkpoints.glob(".trash-*")):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
    return sorted(removed)
