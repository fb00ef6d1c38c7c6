"""DINO-WM's latent predictor: a ViT over (frames x patches) tokens with block-causal frame attention.

Every patch token of frame ``t`` is the encoder's patch feature concatenated with an embedding of the
frame's proprio and of the action taken at ``t`` (DINO-WM layout, 10 dims each by default). A patch
attends to all patches of its own frame and of earlier frames (block-causal mask), so the model is a
causal sequence model over frames: position ``t`` predicts frame ``t + 1`` (visual tokens and proprio).

The temporal position table has ``max_frames`` slots, counted from the first frame of the context. During
a rollout the context grows by one frame per imagined step and only the new frame's tokens are computed,
against cached keys/values (:class:`KVCache`): the result equals recomputing the whole sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from worldmodels.models.dropout import Dropout, dropout


def _sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, p: float
) -> torch.Tensor:
    """Scaled dot-product attention. With dropout on a CPU the probabilities are materialised and dropped
    through :func:`worldmodels.models.dropout.dropout` (PyTorch's own path does the same with a Bernoulli draw
    per score, about 8x the generator work); otherwise PyTorch's fused kernels."""
    if p == 0.0 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return dropout(scores.softmax(-1), p) @ v


def block_causal_mask(num_frames: int, num_patches: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean ``(L, L)`` mask, ``L = num_frames * num_patches``: token i may attend token j iff
    ``frame(j) <= frame(i)``."""
    frame = torch.arange(num_frames, device=device).repeat_interleave(num_patches)
    return frame[None, :] <= frame[:, None]


def _append_kv(past: torch.Tensor, used: int, new: torch.Tensor, capacity: int) -> torch.Tensor:
    """Keys (or values) ``past[:, :, :used]`` followed by ``new (B, heads, L, head_dim)``.

    Written in place when ``past`` already is a buffer of batch ``B`` with room; otherwise a new buffer of
    ``max(capacity, used + L)`` tokens is allocated once (a batch-1 history is broadcast into it), so a
    rollout copies each frame's keys once instead of re-concatenating the growing context every step.
    With autograd recording (gradient planners) it concatenates instead: an in-place write would clobber
    tensors saved for the backward pass.
    """
    b, n = new.shape[0], used + new.shape[2]
    if torch.is_grad_enabled() and (new.requires_grad or past.requires_grad):
        return torch.cat([past[:, :, :used].expand(b, -1, -1, -1), new], 2)
    if past.shape[0] == b and past.shape[2] >= n:
        past[:, :, used:n] = new
        return past
    buf = new.new_empty(b, new.shape[1], max(capacity, n), new.shape[3])
    buf[:, :, :used] = past[:, :, :used]
    buf[:, :, used:n] = new
    return buf


def _new_kv(new: torch.Tensor, capacity: int) -> torch.Tensor:
    """``new`` keys/values in a buffer with room for ``capacity`` tokens (``new`` itself if no room is asked
    for, or while autograd records)."""
    if capacity <= new.shape[2] or (torch.is_grad_enabled() and new.requires_grad):
        return new
    buf = new.new_empty(new.shape[0], new.shape[1], capacity, new.shape[3])
    buf[:, :, : new.shape[2]] = new
    return buf


#: frames of at least this many tokens take the per-frame attention also when training without dropout
PER_FRAME_MIN_TOKENS = 128


def _per_frame_pays(frame_len: int, dropout_p: float) -> bool:
    """Whether block-causal attention runs as one unmasked call per query frame rather than one masked
    fused call. Measured on a 2-core Sapphire Rapids (docs/speed.md): per-frame is faster without autograd
    (fewer scores), with dropout (the masked call falls back to the materialised softmax) and for 196-token
    frames; for 64-token frames, training without dropout (the Wall profile), the single fused masked call
    was as fast or up to 4% faster, so that case keeps it."""
    return not torch.is_grad_enabled() or dropout_p > 0 or frame_len >= PER_FRAME_MIN_TOKENS


class Attention(nn.Module):
    """Multi-head attention with ``heads x head_dim`` independent of the token width."""

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.proj = nn.Linear(heads * head_dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
        past_len: int = 0,
        capacity: int = 0,
        frame_len: int = 0,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x (B, L, dim)``; the first ``past_len`` tokens of ``past`` keys/values ``(B or 1, heads, >=
        past_len, head_dim)`` are prepended. Returns the output and the keys/values attended to (``past`` +
        those of ``x``: the grown cache, in a buffer with room for ``capacity`` tokens when asked).

        Block-causal attention without a mask: with ``frame_len`` (and no ``mask``), ``x`` is frames of
        ``frame_len`` tokens and the queries of each frame attend all keys up to the end of their own frame,
        one unmasked attention call per frame. That skips the masked-out score blocks (a third of the scores
        at 3 frames) and keeps PyTorch's fused kernels, which a boolean mask (with dropout, any attention)
        would turn into the materialised ``L x L`` softmax path."""
        q, k, v = rearrange(self.qkv(x), "b l (three h d) -> three b h l d", three=3, h=self.heads)
        if past is None:
            k_buf, v_buf = _new_kv(k, capacity), _new_kv(v, capacity)
        else:
            k_buf, v_buf = (
                _append_kv(past[0], past_len, k, capacity),
                _append_kv(past[1], past_len, v, capacity),
            )
        length = x.shape[1]
        n = past_len + length
        p = self.dropout if self.training else 0.0
        if frame_len and mask is None and length > frame_len:
            if length % frame_len or past_len % frame_len:
                raise ValueError(f"{past_len} + {length} tokens are not whole frames of {frame_len}")
            if not _per_frame_pays(frame_len, p):
                mask = block_causal_mask(n // frame_len, frame_len, x.device)[past_len:]
        if mask is not None or not frame_len or length <= frame_len:
            out = _sdpa(q, k_buf[:, :, :n], v_buf[:, :, :n], mask, p)
            return self.proj(rearrange(out, "b h l d -> b l (h d)")), (k_buf, v_buf)
        outs = []
        for s in range(0, length, frame_len):
            e = past_len + s + frame_len  # keys up to the end of this frame
            o = _sdpa(q[:, :, s : s + frame_len], k_buf[:, :, :e], v_buf[:, :, :e], None, p)
            outs.append(o.transpose(1, 2))
        return self.proj(torch.cat(outs, 1).flatten(2)), (k_buf, v_buf)


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, head_dim, dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim),
            nn.GELU(),
            Dropout(dropout),
            nn.Linear(mlp_dim, dim),
            Dropout(dropout),
        )

    def forward(self, x, mask, past=None, past_len: int = 0, capacity: int = 0, frame_len: int = 0):
        a, kv = self.attn(self.norm1(x), mask, past, past_len, capacity, frame_len)
        x = x + a
        return x + self.mlp(self.norm2(x)), kv


@dataclass
class KVCache:
    """Per-layer keys/values of the frames seen so far: each ``(B or 1, heads, >= frames * N, head_dim)``,
    valid up to ``num_frames * N`` tokens (the rest is room that later frames are written into)."""

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    num_frames: int


class LatentPredictor(nn.Module):
    """Block-causal ViT predictor.

    Args:
        num_patches: tokens per frame ``N``.
        visual_dim: encoder token dimension ``D``.
        proprio_dim: proprio dimension ``P`` (0 for none).
        action_dim: action dimension per model step (env action dim x frameskip).
        max_frames: temporal positions (longest context, in frames).
        width: transformer token width (input tokens ``D + 2 * emb_dim`` are projected to it).
        depth: number of blocks (DINO-WM: 6).
        heads: attention heads (DINO-WM: 16).
        head_dim: dimension per head (DINO-WM: 64).
        mlp_dim: MLP hidden size (DINO-WM: 2048).
        emb_dim: size of the action and proprio embeddings concatenated to every patch (DINO-WM: 10).
        dropout: dropout (DINO-WM: 0.1).
        residual: predict the change from the input frame (``next = current + head(x)``, heads
            initialised to zero so training starts from copy-last) instead of the next frame itself
            (DINO-WM).
    """

    def __init__(
        self,
        num_patches: int,
        visual_dim: int,
        proprio_dim: int,
        action_dim: int,
        max_frames: int = 8,
        width: int = 256,
        depth: int = 4,
        heads: int = 8,
        head_dim: int = 32,
        mlp_dim: int = 512,
        emb_dim: int = 10,
        dropout: float = 0.0,
        residual: bool = False,
    ):
        super().__init__()
        for name, v in (("num_patches", num_patches), ("visual_dim", visual_dim), ("action_dim", action_dim),
                        ("max_frames", max_frames), ("width", width), ("depth", depth), ("heads", heads)):  # fmt: skip
            if v < 1:
                raise ValueError(f"{name}={v} must be >= 1")
        self.N, self.D, self.P, self.max_frames = num_patches, visual_dim, proprio_dim, max_frames
        self.action_emb = nn.Linear(action_dim, emb_dim)
        self.proprio_emb = nn.Linear(proprio_dim, emb_dim) if proprio_dim else None
        in_dim = visual_dim + emb_dim + (emb_dim if proprio_dim else 0)
        self.in_proj = nn.Linear(in_dim, width)
        self.time_pos = nn.Parameter(torch.zeros(max_frames, 1, width))
        self.patch_pos = nn.Parameter(torch.zeros(1, num_patches, width))
        nn.init.trunc_normal_(self.time_pos, std=0.02)
        nn.init.trunc_normal_(self.patch_pos, std=0.02)
        self.blocks = nn.ModuleList(Block(width, heads, head_dim, mlp_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.visual_head = nn.Linear(width, visual_dim)
        self.proprio_head = nn.Linear(width, proprio_dim) if proprio_dim else None
        self.residual = residual
        if residual:
            for head in (self.visual_head, self.proprio_head):
                if head is not None:
                    nn.init.zeros_(head.weight)
                    nn.init.zeros_(head.bias)

    def _tokens(self, visual, proprio, action, t0: int) -> torch.Tensor:
        """Frames ``t0 .. t0+T-1``: visual ``(B, T, N, D)``, proprio ``(B, T, P)``, action ``(B, T, A)`` ->
        ``(B, T*N, width)``."""
        b, t, n, _ = visual.shape
        if t0 + t > self.max_frames:
            raise ValueError(f"context of {t0 + t} frames exceeds max_frames={self.max_frames}")
        parts = [visual, self.action_emb(action)[:, :, None].expand(b, t, n, -1)]
        if self.proprio_emb is not None:
            parts.append(self.proprio_emb(proprio)[:, :, None].expand(b, t, n, -1))
        x = self.in_proj(torch.cat(parts, -1)) + self.time_pos[t0 : t0 + t] + self.patch_pos
        return rearrange(x, "b t n w -> b (t n) w")

    def _heads(
        self, x: torch.Tensor, visual: torch.Tensor, proprio: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token outputs -> next-frame visual ``(B, T, N, D)`` and proprio ``(B, T, P)``; ``visual`` /
        ``proprio`` are the input frames (the base of a residual prediction)."""
        x = rearrange(self.norm(x), "b (t n) w -> b t n w", t=visual.shape[1])
        out_v = self.visual_head(x)
        out_p = self.proprio_head(x).mean(2) if self.proprio_head is not None else None
        if self.residual:
            out_v = visual + out_v
            out_p = None if out_p is None else proprio + out_p
        return out_v, out_p

    def forward(
        self,
        visual: torch.Tensor,
        proprio: torch.Tensor | None,
        action: torch.Tensor,
        reference: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced prediction over a whole sequence.

        Args:
            visual: ``(B, T, N, D)`` encoder tokens of frames ``0..T-1``.
            proprio: ``(B, T, P)`` normalised proprio (or None when ``proprio_dim == 0``).
            action: ``(B, T, A)`` action taken at each frame.
            reference: attend through the explicit ``block_causal_mask`` over all ``T x N`` tokens (the
                textbook path, for tests and benchmarks) instead of one unmasked call per frame.

        Returns:
            Predictions of frames ``1..T``: visual ``(B, T, N, D)`` and proprio ``(B, T, P)``.
        """
        t = visual.shape[1]
        x = self._tokens(visual, proprio, action, 0)
        mask = block_causal_mask(t, self.N, x.device) if reference else None
        for blk in self.blocks:
            x, _ = blk(x, mask, frame_len=0 if reference else self.N)
        return self._heads(x, visual, proprio)

    def step(
        self,
        visual: torch.Tensor,
        proprio: torch.Tensor | None,
        action: torch.Tensor,
        cache: KVCache | None,
        capacity: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor | None, KVCache]:
        """Append frames to a cached context and predict the frame after each.

        Args:
            visual / proprio / action: the new frames, ``(B, T_new, ...)``.
            cache: the context so far (its batch may be 1 and is broadcast), or None to start one. Its
                buffers may be written in place (a cache is grown along one rollout, not shared).
            capacity: frames the grown cache's buffers should have room for (a rollout's final context
                length), so later steps write into them instead of copying the context.

        Returns:
            visual ``(B, T_new, N, D)`` and proprio ``(B, T_new, P)`` predictions, and the grown cache.
        """
        t0 = 0 if cache is None else cache.num_frames
        t = visual.shape[1]
        x = self._tokens(visual, proprio, action, t0)
        # new tokens see every cached token and the block-causal pattern among themselves: each new frame's
        # queries attend the keys up to its own frame, unmasked (SDPA keeps its fused kernels)
        layers = []
        for i, blk in enumerate(self.blocks):
            past = None if cache is None else cache.layers[i]
            x, kv = blk(x, None, past, t0 * self.N, capacity * self.N, self.N)
            layers.append(kv)
        vis, prop = self._heads(x, visual, proprio)
        return vis, prop, KVCache(layers, t0 + t)
