"""Frame I/O for the heavy half: EXR out (``exr``), sequences (``sequence``), color (``color``).

Import the submodules directly: ``exr`` and ``color`` need OpenImageIO; ``sequence`` is
standard library only.
"""
