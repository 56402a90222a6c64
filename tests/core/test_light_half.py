"""The light half must import with the standard library and numpy only (inside Blender)."""

import subprocess
import sys

BLOCKER = r"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'diffusers', 'transformers', 'OpenImageIO',
                                  'PyOpenColorIO', 'bpy', 'safetensors', 'accelerate'}:
            raise ImportError('heavy import from the light half: ' + name)
sys.meta_path.insert(0, Block())
import sora_core, sora_core.spec, sora_core.protocol, sora_core.client, sora_core.manifest
import sora_core.capabilities, sora_core.models_index, sora_core.cli, sora_core.errors
import sora_core.upsampler_rules, sora_core.preflight
from sora_core.models_index import list_models
list_models()
print('ok')
"""


def test_light_modules_import_without_torch_oiio_or_bpy():
    out = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
