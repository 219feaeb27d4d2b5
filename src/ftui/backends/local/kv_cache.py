"""The running batch's keys and values in preallocated buffers, for ftui's greedy loop.

transformers' ``DynamicLayer`` appends each decoding step's keys and values with ``torch.cat``:
every step copies the whole cache of every row. With k-shot prompts (about 450 positions) and
32 rows that copy is larger than the model's weights, which a step reads once. Here a layer
keeps its keys and values in buffers with room for ``headroom`` more positions: a step writes
its position in place, and the layer's ``keys`` and ``values`` are views of the filled part,
the same shapes and values the attention would get after a ``cat``, so the tokens do not change.
The buffers are copied only when rows leave (their rows are dropped), when rows join (stacked,
left-padded to one length) and when the room runs out (once every ``headroom`` steps).

The prompts' shared beginning (and prefix tuning's virtual tokens) need not be in every row at
all: a ``SharedPrefixLayer`` keeps those positions once, and while ``attention_over_shared_prefix``
is on, the model's attention reads them once for all the rows (``shared_prefix_attention``)
rather than every row's copy: with k-shot prompts, 84% of the positions each step reads.

Imported only when generating: it imports torch and transformers.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import torch
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.modeling_utils import AttentionInterface

SHARED_PREFIX_ATTENTION = "ftui_shared_prefix"
"""The attention implementation's name while ``attention_over_shared_prefix`` is on."""


class PreallocatedLayer(DynamicLayer):
    """A full-attention cache layer whose positions ``start:end`` of its buffers are its keys and
    values; ``parts`` (pairs of keys and values) are stacked by row, left-padded with zeros."""

    def __init__(self, parts: Sequence[tuple[Any, Any]], *, headroom: int) -> None:
        super().__init__()
        self.headroom = headroom
        self.device = parts[0][0].device
        self.is_initialized = True
        self._fill(parts)

    def _fill(self, parts: Sequence[tuple[Any, Any]], extra: int = 0) -> None:
        width = max(keys.shape[-2] for keys, _ in parts)
        rows = sum(keys.shape[0] for keys, _ in parts)
        first_keys, first_values = parts[0]
        room = width + max(self.headroom, extra)
        key_buffer = first_keys.new_empty((rows, first_keys.shape[1], room, first_keys.shape[-1]))
        value_buffer = first_values.new_empty((rows, first_values.shape[1], room, first_values.shape[-1]))
        row = 0
        for keys, values in parts:
            n, pad = keys.shape[0], width - keys.shape[-2]
            # Padding gets zero attention weight, but 0 * NaN is NaN: it must hold finite values.
            key_buffer[row:row + n, :, :pad] = 0
            value_buffer[row:row + n, :, :pad] = 0
            key_buffer[row:row + n, :, pad:width] = keys
            value_buffer[row:row + n, :, pad:width] = values
            row += n
        self.key_buffer, self.value_buffer, self.start, self.end = key_buffer, value_buffer, 0, width
        self._view()

    def _view(self) -> None:
        self.keys = self.key_buffer[:, :, self.start:self.end]
        self.values = self.value_buffer[:, :, self.start:self.end]

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Write the new positions after the last, in place while there is room."""
        n = key_states.shape[-2]
        if self.end + n > self.key_buffer.shape[-2]:
            self._fill([(self.keys, self.values)], extra=n)
        self.key_buffer[:, :, self.end:self.end + n] = key_states
        self.value_buffer[:, :, self.end:self.end + n] = value_states
        self.end += n
        self._view()
        return self.keys, self.values

    def drop_front(self, positions: int) -> None:
        """Forget the first ``positions`` positions (no row attends to them any more)."""
        self.start += positions
        self._view()

    def batch_select_indices(self, indices: Any) -> None:
        """Keep the rows ``indices`` (a copy of those rows, with the room left after ``end``)."""
        self.key_buffer = self.key_buffer[:, :, self.start:].index_select(0, indices)
        self.value_buffer = self.value_buffer[:, :, self.start:].index_select(0, indices)
        self.start, self.end = 0, self.end - self.start
        self._view()

    def reorder_cache(self, beam_idx: Any) -> None:
        self.batch_select_indices(beam_idx.to(self.device))

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._fill([(self.keys.repeat_interleave(repeats, dim=0), self.values.repeat_interleave(repeats, dim=0))])

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError(f"crop takes a negative number of positions to remove, got {tokens_to_remove}")
        self.end -= min(-tokens_to_remove, self.end - self.start)
        self._view()


class SharedPrefix:
    """Keys and values of the positions every row begins with (``[1, heads, positions, dim]``),
    kept once, and how many times the attention has read them."""

    def __init__(self, keys: Any, values: Any) -> None:
        self.keys, self.values, self.reads = keys, values, 0


class SharedPrefixLayer(PreallocatedLayer):
    """The rows' own positions, preallocated, after a ``SharedPrefix``. Its length, its masks and
    ``update``'s keys and values are the rows' own positions; the keys carry the prefix as
    ``shared_prefix`` for ``shared_prefix_attention`` (the prefix, not the layer: no cycle that
    would keep the buffers alive until the garbage collector runs)."""

    def __init__(self, prefix: SharedPrefix, parts: Sequence[tuple[Any, Any]], *, headroom: int) -> None:
        self.prefix = prefix
        super().__init__(parts, headroom=headroom)

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        keys, values = super().update(key_states, value_states, *args, **kwargs)
        keys.shared_prefix = self.prefix
        return keys, values


def shared_prefix_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                            dropout: float = 0.0, scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """Attention over a ``SharedPrefixLayer``'s prefix and then its own positions, for one new
    position per row; sdpa's for any other keys (prefill, layers of other kinds).

    The scores against the prefix are one product for all the rows' queries (the prefix is read
    once), then one softmax over prefix and own positions, as sdpa over the whole row would do.
    """
    prefix = getattr(key, "shared_prefix", None)
    if prefix is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    rows, heads, new, dim = query.shape
    if new != 1:
        raise RuntimeError(f"shared-prefix attention decodes one position per row, got {new}")
    prefix.reads += 1
    prefix_keys, prefix_values = prefix.keys, prefix.values
    kv_heads, shared = key.shape[1], prefix_keys.shape[-2]
    # Query heads h*n .. h*n+n-1 read key head h (transformers' repeat_kv): group them by key head.
    q = query.reshape(rows, kv_heads, heads // kv_heads, dim)
    group = q.shape[2]
    all_rows = q.transpose(0, 1).reshape(kv_heads, rows * group, dim)
    on_prefix = torch.matmul(all_rows, prefix_keys[0].transpose(-1, -2))
    on_prefix = on_prefix.reshape(kv_heads, rows, group, shared).transpose(0, 1)
    scores = torch.cat([on_prefix, torch.matmul(q, key.transpose(-1, -2))], dim=-1)
    scores = scores * (scaling if scaling is not None else dim ** -0.5)
    if attention_mask is not None:  # [rows, 1, 1, own positions]: sdpa_mask's, True where attended
        own = scores[..., shared:]
        if attention_mask.dtype == torch.bool:
            own.masked_fill_(~attention_mask, float("-inf"))
        else:
            own.add_(attention_mask)
    weights = scores.softmax(dim=-1)
    out = torch.matmul(weights[..., shared:], value)
    from_prefix = torch.matmul(weights[..., :shared].transpose(0, 1).reshape(kv_heads, rows * group, shared),
                               prefix_values[0])
    out = out + from_prefix.reshape(kv_heads, rows, group, dim).transpose(0, 1)
    return out.reshape(rows, heads, new, dim).transpose(1, 2).contiguous(), None


@contextlib.contextmanager
def attention_over_shared_prefix(config: Any) -> Iterator[bool]:
    """While inside, a model with ``config`` computes attention with ``shared_prefix_attention``
    (sdpa's, except over a ``SharedPrefixLayer``); yields False, changing nothing, unless the
    model uses sdpa."""
    if config._attn_implementation != "sdpa":
        yield False
        return
    AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)
    AttentionMaskInterface.register(SHARED_PREFIX_ATTENTION, sdpa_mask)
    config._attn_implementation = SHARED_PREFIX_ATTENTION
    try:
        yield True
    finally:
        config._attn_implementation = "sdpa"


def preallocate(cache: Any, *, headroom: int, prefix: Any = None) -> None:
    """Move ``cache``'s layers (plain ``DynamicLayer`` ones, filled) into preallocated buffers;
    with ``prefix`` (a cache of one row whose positions begin every row of ``cache``), into
    ``SharedPrefixLayer``s holding the rest of each row."""
    if prefix is None:
        cache.layers = [PreallocatedLayer([(layer.keys, layer.values)], headroom=headroom) for layer in cache.layers]
        return
    cache.layers = [
        SharedPrefixLayer(SharedPrefix(shared.keys, shared.values),
                          [(layer.keys[:, :, shared.keys.shape[-2]:], layer.values[:, :, shared.keys.shape[-2]:])],
                          headroom=headroom)
        for layer, shared in zip(cache.layers, prefix.layers)]


def append_rows(cache: Any, other: Any, *, width: int, headroom: int) -> None:
    """Add ``other``'s rows after ``cache``'s, both left-padded to ``width`` positions (the
    longer one's).

    Layers that are not preallocated (a cache that cannot be cut and joined, filled by one
    round of prompts: ``_Stream``'s fallback) are joined as they are, by ``cat``.
    """
    def left(t: Any, width: int) -> Any:  # zeros before the first position
        return torch.nn.functional.pad(t, (0, 0, width - t.shape[-2], 0))

    for at, (mine, theirs) in enumerate(zip(cache.layers, other.layers)):
        parts = [(mine.keys, mine.values), (theirs.keys, theirs.values)]
        if isinstance(mine, SharedPrefixLayer):
            # ``other`` holds whole rows: keep their own positions, after the prefix.
            shared = mine.prefix.keys.shape[-2]
            parts[1] = (theirs.keys[:, :, shared:], theirs.values[:, :, shared:])
            cache.layers[at] = SharedPrefixLayer(mine.prefix, parts, headroom=headroom)
        elif isinstance(mine, PreallocatedLayer):
            cache.layers[at] = PreallocatedLayer(parts, headroom=headroom)
        else:
            mine.keys = torch.cat([left(mine.keys, width), left(theirs.keys, width)])
            mine.values = torch.cat([left(mine.values, width), left(theirs.values, width)])


def drop_front(cache: Any, positions: int) -> None:
    """Forget every layer's first ``positions`` positions."""
    for layer in cache.layers:
        layer.drop_front(positions)
