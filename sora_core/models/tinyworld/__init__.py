"""TinyWorld: the bundled text-to-video diffusion transformer, trained on a procedural world.

This module holds only the declared limits, so that hosts can read them without torch.
The pipeline lives in :mod:`sora_core.models.tinyworld.pipeline`.
"""

NATIVE_SIZE = (64, 64)      # (height, width) in pixels; the only size the model makes
MAX_FRAMES = 16             # frames per pass
MIN_FRAMES = 2
FPS = 8
DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 3.0
GUIDANCE_MIN_SIGMA = 0.1   # no guidance on the last, low-noise steps (see pipeline.py)
DEFAULT_CONTEXT = 4         # given frames that condition an extension
MAX_PROMPT_WORDS = 40
