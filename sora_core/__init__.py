"""Host-agnostic core for prompt-driven video shots.

The light half (spec, protocol, client, manifest, capabilities, CLI front) imports with the
standard library and numpy only, so it runs inside Blender's Python or any DCC. The heavy half
(worker, backends, frames) imports torch, diffusers and OpenImageIO and runs in its own process.
"""

__version__ = "0.1.0"
GENERATOR = "sora_core"
