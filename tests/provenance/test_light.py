"""Provenance modules a host imports stay light: no c2pa, cryptography, torch or OpenImageIO."""

import subprocess
import sys

CODE = r"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'c2pa', 'cryptography', 'torch', 'OpenImageIO', 'PyOpenColorIO', 'bpy'}:
            raise ImportError('heavy import: ' + name)
sys.meta_path.insert(0, Block())
import sora_core.cli, sora_core.provenance.cli, sora_core.provenance.verify, sora_core.provenance.sign
import sora_core.provenance.credentials, sora_core.provenance.keys, sora_core.provenance.jws
print(sora_core.provenance.sign.shot_signer())
"""


def test_provenance_imports_light_and_no_identity_means_no_signer(tmp_path):
    env = {"PATH": "", "HOME": str(tmp_path), "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"
