"""Resident memory that stays flat over a long CPU run (issue #19): the heap settings give freed
memory back to the system, and change no result of training."""

from __future__ import annotations

import ctypes

import pytest

from ftui.backends.local import heap

glibc = pytest.mark.skipif(heap.stats() is None, reason="glibc's malloc only (mallinfo2: glibc 2.33 or later)")

KiB, MiB = 1 << 10, 1 << 20


def resident() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _malloc():
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


@glibc
def test_trim_gives_back_the_freed_holes_of_a_fragmented_heap():
    libc = _malloc()
    # 3,000 blocks of 64 KiB (under any mmap threshold: from the heap), touched (resident); every
    # other one freed leaves holes between live blocks, which no trim of the heap's top reaches.
    blocks = [libc.malloc(64 * KiB) for _ in range(3000)]
    for block in blocks:
        ctypes.memset(block, 1, 64 * KiB)
    try:
        for block in blocks[0::2]:
            libc.free(block)
        held = resident()
        assert heap.stats().free >= 80 * MiB  # freed, kept by the heap
        assert heap.trim()
        assert resident() < held - 60 * MiB
    finally:
        for block in blocks[1::2]:
            libc.free(block)


@glibc
def test_a_fixed_mmap_threshold_maps_large_blocks_on_their_own_and_unmaps_them_when_freed():
    libc = _malloc()
    assert heap.fix_mmap_threshold(heap.MMAP_THRESHOLD)
    before = heap.stats().mapped
    block = libc.malloc(heap.MMAP_THRESHOLD + MiB)
    assert heap.stats().mapped >= before + heap.MMAP_THRESHOLD + MiB
    libc.free(block)
    assert heap.stats().mapped <= before


def _train(run_dir):
    from transformers import TrainerCallback

    from ftui.backends.local.hardware import Sampler
    from ftui.backends.local.train import train_run
    from ftui.core.cost import Price
    from ftui.core.events import EventWriter
    from ftui.core.runs import Run

    losses: list[float] = []

    class Losses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    run = Run(run_dir)
    with EventWriter(run.events_path) as events:
        assert train_run(run, events=events, should_stop=lambda: False, price=Price(0.0, ""), sampler=Sampler(),
                         device="cpu", dtype="bfloat16", callbacks=[Losses()])
    return losses


def test_the_heap_settings_change_no_loss(tmp_path, tiny_model, monkeypatch):
    """Training with the heap settings gives the losses training without them gives, to the bit
    (mapped memory comes zeroed, heap memory does not: an op that read memory it never wrote
    would tell), on rows of many lengths."""
    from ftui.core.request import RunRequest, prepare_run

    from conftest import write_jsonl

    words = ["red", "green", "blue", "black", "white", "pink", "grey", "brown"]
    data = write_jsonl(tmp_path / "rows.jsonl", [
        {"input": f"Colour {i}: " + " ".join(words[j % 8] for j in range(i % 23 + 1)) + ". The last colour?",
         "output": words[i % 8]} for i in range(40)])

    def run_dir():
        return prepare_run(RunRequest(data=data, task="text", model=str(tiny_model), max_steps=8, overrides=(
            "batch_size=4", "learning_rate=0.02", "eval_every=100", "split.val=0", "split.test=0"))).dir

    calls: list[str] = []
    monkeypatch.setattr(heap, "fix_mmap_threshold", lambda *a, **k: calls.append("mmap") or True)
    monkeypatch.setattr(heap, "trim", lambda: calls.append("trim") or True)
    without = _train(run_dir())
    assert calls.count("trim") == 8 and calls.count("mmap") == 1  # the callback is in train_run's path
    monkeypatch.undo()
    with_settings = _train(run_dir())
    assert len(without) == 8 and without == with_settings
