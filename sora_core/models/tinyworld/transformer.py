"""The TinyWorld diffusion transformer and its small word-level text encoder.

Both are diffusers ``ModelMixin`` + ``ConfigMixin`` models, saved as safetensors.

The transformer works on a fixed, cheap "latent": each 64x64 sRGB frame average-pooled 2x to
32x32 and mapped to [-1, 1] (see :func:`encode_frames`). Tokens are (2 frames x 4 x 4) patches,
so a 16-frame clip is 8 x 8 x 8 = 512 tokens; an object (13-16 px) spans about two tokens a side.
Inputs per pixel: the noisy latent (3), the known-frame latent (3, zero where unknown) and the
known mask (1). The network predicts the clean clip (x0); the sampler derives the velocity.
Attention is full 3-D self-attention with rotary positions over (frame, row, column), then
cross-attention to the caption's word states, then an MLP; time and pooled text modulate each
block through one shared adaLN table (as in PixArt-alpha) plus a learned per-block offset.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def encode_frames(frames: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) sRGB [0, 1] -> latent (B, 3, T, H/2, W/2) in [-1, 1]."""
    b, t, h, w, c = frames.shape
    x = frames.permute(0, 1, 4, 2, 3).reshape(b * t, c, h, w)
    x = F.avg_pool2d(x, 2)
    x = x.reshape(b, t, c, h // 2, w // 2).permute(0, 2, 1, 3, 4)
    return x * 2 - 1


def decode_latents(lat: torch.Tensor) -> torch.Tensor:
    """latent (B, 3, T, h, w) -> (B, T, 2h, 2w, 3) sRGB in [0, 1] (bilinear 2x)."""
    b, c, t, h, w = lat.shape
    x = lat.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    x = ((x + 1) / 2).clamp(0, 1)
    return x.reshape(b, t, c, 2 * h, 2 * w).permute(0, 1, 3, 4, 2)


def _rope_1d(pos: torch.Tensor, dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    ang = pos.float()[:, None] * freqs[None]
    return ang.cos(), ang.sin()


def rope_3d(t: int, h: int, w: int, axes: tuple[int, int, int], theta: float = 100.0):
    """cos, sin of shape (t*h*w, sum(axes)/2) for token order (frame, row, column)."""
    gt, gh, gw = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij")
    parts = [_rope_1d(g.reshape(-1), d, theta) for g, d in zip((gt, gh, gw), axes)]
    return torch.cat([p[0] for p in parts], -1), torch.cat([p[1] for p in parts], -1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, heads, N, d): rotate pairs (even, odd) of the first 2*cos.shape[-1] channels."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    r1 = x1 * cos - x2 * sin
    r2 = x1 * sin + x2 * cos
    return torch.stack([r1, r2], -1).flatten(-2)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    a = t.float()[:, None] * 1000.0 * freqs[None]
    return torch.cat([a.cos(), a.sin()], -1)


class Block(nn.Module):
    def __init__(self, width: int, heads: int, text_dim: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width)
        self.q_norm = nn.LayerNorm(width // heads, eps=1e-6)
        self.k_norm = nn.LayerNorm(width // heads, eps=1e-6)
        self.proj = nn.Linear(width, width)
        self.norm_x = nn.LayerNorm(width, eps=1e-6)
        self.q_x = nn.Linear(width, width)
        self.kv_x = nn.Linear(text_dim, 2 * width)
        self.proj_x = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.ada = nn.Parameter(torch.zeros(6, width))

    def forward(self, x, mod, cos, sin, text, text_bias):
        b, n, d = x.shape
        h = self.heads
        s1, b1, g1, s2, b2, g2 = (mod + self.ada[None]).unbind(1)
        y = self.norm1(x) * (1 + s1[:, None]) + b1[:, None]
        q, k, v = self.qkv(y).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + g1[:, None] * self.proj(y)
        # cross-attention to the words
        q = self.q_x(self.norm_x(x)).reshape(b, n, h, d // h).transpose(1, 2)
        kv = self.kv_x(text).reshape(b, text.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, kv[0], kv[1], attn_mask=text_bias)
        x = x + self.proj_x(y.transpose(1, 2).reshape(b, n, d))
        y = self.norm2(x) * (1 + s2[:, None]) + b2[:, None]
        return x + g2[:, None] * self.mlp(y)


class TinyWorldTransformer(ModelMixin, ConfigMixin):
    """Predicts the clean latent clip from a noisy one, the known frames and the caption."""

    @register_to_config
    def __init__(self, in_channels: int = 3, cond_channels: int = 4, patch_size: tuple = (2, 4, 4),
                 width: int = 256, depth: int = 6, heads: int = 4, mlp_ratio: float = 4.0,
                 text_dim: int = 256, rope_axes: tuple = (16, 24, 24), rope_theta: float = 100.0):
        super().__init__()
        pt, ph, pw = patch_size
        self.patch = (pt, ph, pw)
        self.embed = nn.Linear((in_channels + cond_channels) * pt * ph * pw, width)
        self.t_mlp = nn.Sequential(nn.Linear(256, width), nn.SiLU(), nn.Linear(width, width))
        self.pool_proj = nn.Linear(text_dim, width)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        self.blocks = nn.ModuleList([Block(width, heads, text_dim, mlp_ratio) for _ in range(depth)])
        self.norm_out = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.out = nn.Linear(width, in_channels * pt * ph * pw)
        self._rope_cache: dict = {}
        self._init()

    def _init(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.ada[-1].weight)
        nn.init.zeros_(self.ada[-1].bias)
        nn.init.zeros_(self.ada_out[-1].weight)
        nn.init.zeros_(self.ada_out[-1].bias)
        nn.init.zeros_(self.out.weight)
        for blk in self.blocks:
            nn.init.zeros_(blk.proj_x.weight)

    def _rope(self, t, h, w, device):
        key = (t, h, w, str(device))
        if key not in self._rope_cache:
            cos, sin = rope_3d(t, h, w, tuple(self.config.rope_axes), self.config.rope_theta)
            self._rope_cache[key] = (cos.to(device), sin.to(device))
        return self._rope_cache[key]

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor,
                text_states: torch.Tensor, text_mask: torch.Tensor, text_pooled: torch.Tensor) -> torch.Tensor:
        """sample (B,3,T,H,W), timestep = sigma in [0,1] (B,), cond (B,4,T,H,W), text (B,L,D), mask (B,L)."""
        b, _, T, H, W = sample.shape
        pt, ph, pw = self.patch
        nt, nh, nw = T // pt, H // ph, W // pw
        x = torch.cat([sample, cond.to(sample.dtype)], 1)
        c = x.shape[1]
        x = x.reshape(b, c, nt, pt, nh, ph, nw, pw).permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, nt * nh * nw, -1)
        x = self.embed(x)
        vec = self.t_mlp(timestep_embedding(timestep, 256).to(x.dtype)) + self.pool_proj(text_pooled.to(x.dtype))
        mod = self.ada(vec).reshape(b, 6, -1)
        cos, sin = self._rope(nt, nh, nw, x.device)
        text = text_states.to(x.dtype)
        bias = text_mask.bool()[:, None, None, :]
        for blk in self.blocks:
            x = blk(x, mod, cos, sin, text, bias)
        sh, sc = self.ada_out(vec).chunk(2, -1)
        x = self.norm_out(x) * (1 + sc[:, None]) + sh[:, None]
        x = self.out(x)
        co = self.config.in_channels
        x = x.reshape(b, nt, nh, nw, co, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, co, T, H, W)
        return x


class TinyWorldTextEncoder(ModelMixin, ConfigMixin):
    """Word embeddings + learned positions through a few small transformer layers.

    Returns per-word states (for cross-attention) and their masked mean (pooled).
    """

    @register_to_config
    def __init__(self, vocab_size: int = 32, dim: int = 256, layers: int = 2, heads: int = 4,
                 max_len: int = 48):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        L = input_ids.shape[1]
        x = self.tok(input_ids) + self.pos(torch.arange(L, device=input_ids.device))[None]
        mask = attention_mask.bool()
        x = self.encoder(x, src_key_padding_mask=~mask)
        x = self.norm(x)
        m = mask.to(x.dtype)[..., None]
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1)
        return x, pooled
