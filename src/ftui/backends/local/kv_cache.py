"""The running batch's keys and values in preallocated buffers, for ftui's greedy loop.

transformers' ``DynamicLayer`` appends each decoding step's keys and values with ``torch.cat``:
every step copies the whole cache of every row. With k-shot prompts (about 450 positions) and
32 rows that copy is larger than the model's weights, which a step reads once. Here a layer
keeps its keys and values in buffers with room for ``headroom`` more positions: a step writes
its position in place, and the layer's ``keys`` and ``values`` are views of the filled part,
the same shapes and values the attention would get after a ``cat``, so the tokens do not change.
The buffers are copied whole only when rows join (stacked, left-padded to one length) and when
the room runs out (once every ``headroom`` steps); when rows leave, the last rows move into their
places (``keep_rows``).

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

    def move_rows(self, moves: Sequence[tuple[int, int]], rows: int) -> None:
        """Copy row ``source`` to row ``target`` for each ``(target, source)``, then keep the first
        ``rows`` rows (a view: only the moved rows are copied)."""
        if moves:
            targets = torch.tensor([t for t, _ in moves], device=self.device)
            sources = torch.tensor([s for _, s in moves], device=self.device)
            for buffer in (self.key_buffer, self.value_buffer):
                filled = buffer[:, :, self.start:self.end]
                filled[targets] = filled[sources]
        self.key_buffer, self.value_buffer = self.key_buffer[:rows], self.value_buffer[:rows]
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


class PrefixRows:
    """Which of a ``SharedPrefix``'s positions each row begins with, when the rows do not all begin
    alike (prompts of several groups, each with its own beginning, the beginnings one after the
    other in the prefix): ``mask`` is ``[rows, positions]``, True where the row reads; None while
    every row reads them all. One for all the layers; the generator keeps it in step with the rows."""

    def __init__(self) -> None:
        self.mask: Any = None


class SharedPrefix:
    """Keys and values of the positions every row begins with (``[1, heads, positions, dim]``),
    kept once, and how many times the attention has read them; ``rows`` says which of them each
    row reads, when not all."""

    def __init__(self, keys: Any, values: Any, rows: PrefixRows | None = None) -> None:
        self.keys, self.values, self.reads, self.rows = keys, values, 0, rows


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


class PackedRows:
    """Prompts prefilled as one sequence after a shared beginning: their ``lengths``, one after the
    other; ``index`` and ``real`` (``[rows, longest]``) place each row's positions, left-aligned,
    in the packed sequence."""

    def __init__(self, lengths: Sequence[int], device: Any) -> None:
        self.lengths = list(lengths)
        steps = torch.arange(max(self.lengths), device=device)
        self.starts = torch.tensor([0, *self.lengths[:-1]], device=device).cumsum(0)
        self.real = steps[None, :] < torch.tensor(self.lengths, device=device)[:, None]
        self.index = torch.where(self.real, self.starts[:, None] + steps[None, :], 0)

    def left_padded(self, packed: Any, rows: Any) -> Any:
        """``packed`` (``[1, heads, positions, dim]``) as ``rows``' positions, left-padded with zeros
        to the longest of them (``[rows, heads, longest, dim]``), as a running batch keeps them."""
        lengths = torch.tensor(self.lengths, device=packed.device)[rows]
        width = int(lengths.max())
        steps = torch.arange(width, device=packed.device)
        pad = width - lengths[:, None]
        real = steps[None, :] >= pad
        index = torch.where(real, self.starts[rows][:, None] + steps[None, :] - pad, 0)
        return packed[0][:, index].transpose(0, 1).masked_fill(~real[:, None, :, None], 0)


class PackedLayer(DynamicLayer):
    """A cache layer for a packed prefill after a shared beginning (``prefix``: this layer's keys
    and values of it, ``[1, heads, positions, dim]``): ``update`` keeps the packed keys and values,
    marked for ``shared_prefix_attention``."""

    def __init__(self, rows: PackedRows, prefix: tuple[Any, Any]) -> None:
        super().__init__()
        self.rows, self.prefix, self.is_initialized = rows, prefix, True

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        self.keys, self.values = key_states, value_states
        key_states.packed = (self.rows, self.prefix)  # not the layer: no cycle keeping the keys alive
        return key_states, value_states


PACKED_ATTENTION_ROWS = 8
"""Rows of a packed prefill whose attention is computed together, padded to the longest of them."""


def packed_attention(query: Any, key: Any, value: Any, rows: PackedRows, prefix: tuple[Any, Any],
                     scaling: float) -> Any:
    """Causal attention of packed prompts, each over the shared beginning and its own positions.

    The prompts' queries, keys and values are set out row by row, left-aligned, each row's keys
    after the beginning's, ``PACKED_ATTENTION_ROWS`` rows at a time padded to the longest of them
    (prompts come longest first: rows of a like length); sdpa then attends with a mask of the
    beginning, the row's positions up to the query's, and no padding. Returns ``[1, positions,
    heads, dim]``, as sdpa's attention does.
    """
    prefix_keys, prefix_values = prefix
    shared = prefix_keys.shape[-2]
    lengths = rows.lengths
    outputs = []
    for first in range(0, len(lengths), PACKED_ATTENTION_ROWS):
        n = len(lengths[first:first + PACKED_ATTENTION_ROWS])
        width = max(lengths[first:first + n])
        index, real = rows.index[first:first + n, :width], rows.real[first:first + n, :width]
        q = query[0][:, index].transpose(0, 1)  # [rows, heads, width, dim]
        k = torch.cat([prefix_keys.expand(n, -1, -1, -1), key[0][:, index].transpose(0, 1)], dim=2)
        v = torch.cat([prefix_values.expand(n, -1, -1, -1), value[0][:, index].transpose(0, 1)], dim=2)
        causal = torch.ones(width, width, dtype=torch.bool, device=query.device).tril()
        own = causal[None] & real[:, None, :]  # [rows, query, key]
        mask = torch.cat([own.new_ones((n, width, shared)), own], dim=-1)[:, None]
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scaling,
                                                               enable_gqa=k.shape[1] != q.shape[1])
        outputs.append(out.transpose(1, 2)[real])  # [positions, heads, dim]
    return torch.cat(outputs)[None]


def shared_prefix_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                            dropout: float = 0.0, scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    """Attention over a ``SharedPrefixLayer``'s prefix and then its own positions, for one new
    position per row; over a packed prefill's beginning and each prompt's own positions
    (``PackedLayer``: ``packed_attention``); sdpa's for any other keys (layers of other kinds).

    The scores against the prefix are one product for all the rows' queries (the prefix is read
    once), then one softmax over prefix and own positions, as sdpa over the whole row would do.
    """
    packed = getattr(key, "packed", None)
    if packed is not None:
        scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
        return packed_attention(query, key, value, *packed, scaling=scaling), None
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
    row_mask = prefix.rows.mask if prefix.rows is not None else None
    if row_mask is not None:  # the beginnings of other groups' prompts: no weight
        on_prefix = on_prefix.masked_fill(~row_mask[:, None, None, :], float("-inf"))
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


def shared_prefixes(caches: Sequence[Any], rows: PrefixRows | None = None) -> list[SharedPrefix]:
    """Each layer's ``SharedPrefix``: the positions of ``caches`` (caches of one row, one per group
    of prompts), one cache after the other."""
    layers = zip(*(cache.layers for cache in caches))
    return [SharedPrefix(torch.cat([layer.keys for layer in group], dim=-2),
                         torch.cat([layer.values for layer in group], dim=-2), rows)
            if len(group) > 1 else SharedPrefix(group[0].keys, group[0].values, rows)
            for group in layers]


def preallocate(cache: Any, *, headroom: int, prefix: Sequence[SharedPrefix] | None = None, skip: int = 0) -> None:
    """Move ``cache``'s layers (plain ``DynamicLayer`` ones, filled) into preallocated buffers;
    with ``prefix`` (each layer's ``SharedPrefix``), into ``SharedPrefixLayer``s holding each
    row's positions after its first ``skip`` (the beginning the prefix holds)."""
    if prefix is None:
        cache.layers = [PreallocatedLayer([(layer.keys, layer.values)], headroom=headroom) for layer in cache.layers]
        return
    cache.layers = [SharedPrefixLayer(shared, [(layer.keys[:, :, skip:], layer.values[:, :, skip:])], headroom=headroom)
                    for layer, shared in zip(cache.layers, prefix)]


def append_rows(cache: Any, other: Any, *, width: int, headroom: int, skip: int = 0) -> None:
    """Add ``other``'s rows after ``cache``'s, both left-padded to ``width`` positions (the
    longer one's); with shared-prefix layers, ``other``'s rows keep their positions after the
    first ``skip`` (the beginning the prefix holds).

    Layers that are not preallocated (a cache that cannot be cut and joined, filled by one
    round of prompts: ``_Stream``'s fallback) are joined as they are, by ``cat``.
    """
    def left(t: Any, width: int) -> Any:  # zeros before the first position
        return torch.nn.functional.pad(t, (0, 0, width - t.shape[-2], 0))

    for at, (mine, theirs) in enumerate(zip(cache.layers, other.layers)):
        parts = [(mine.keys, mine.values), (theirs.keys, theirs.values)]
        if isinstance(mine, SharedPrefixLayer):
            # ``other`` holds whole rows: keep their own positions, after the prefix.
            parts[1] = (theirs.keys[:, :, skip:], theirs.values[:, :, skip:])
            cache.layers[at] = SharedPrefixLayer(mine.prefix, parts, headroom=headroom)
        elif isinstance(mine, PreallocatedLayer):
            cache.layers[at] = PreallocatedLayer(parts, headroom=headroom)
        else:
            mine.keys = torch.cat([left(mine.keys, width), left(theirs.keys, width)])
            mine.values = torch.cat([left(mine.values, width), left(theirs.values, width)])


def keep_rows(cache: Any, going: Sequence[int], rows: int) -> list[int]:
    """Keep the rows ``going`` (positions in a batch of ``rows``) of a preallocated cache; returns
    their new order (the old positions, by new position).

    A row that leaves gives its place to one of the last rows still going, whose keys and values
    are copied there; the batch is then the first ``len(going)`` rows. Only the moved rows are
    copied, where selecting the rows copied all of them: with k-shot prompts and 32 rows, ~90 ms
    each time a row finished, 1.5-2 s of a 13 s eval of 32 prompts.
    """
    kept = len(going)
    order = list(range(kept))
    staying = set(going)
    holes = [at for at in range(kept) if at not in staying]
    sources = [at for at in going if at >= kept]
    moves = list(zip(holes, sources))
    for target, source in moves:
        order[target] = source
    for layer in cache.layers:
        layer.move_rows(moves, kept)
    return order


def drop_front(cache: Any, positions: int) -> None:
    """Forget every layer's first ``positions`` positions."""
    for layer in cache.layers:
        layer.drop_front(positions)
