"""A shot's sound track (LTX-2 makes one): the part of each pass that belongs to the frames it
wrote, joined in shot order and written as ``<name>.wav`` (16-bit PCM, standard library
``wave``) beside the frames, through the shot folder held open like the frames (``safe_write``).
"""

from __future__ import annotations

import io
import wave

import numpy as np


def frames_span(samples: np.ndarray, rate: int, fps: float, first: int, count: int) -> np.ndarray:
    """The samples under frames ``first .. first+count-1`` of a pass (``samples``: (N, C)),
    padded with silence where the model made less, so the track lasts exactly as the frames."""
    per_frame = rate / float(fps)
    start, stop = round(first * per_frame), round((first + count) * per_frame)
    span = samples[start:stop]
    if len(span) < stop - start:
        span = np.concatenate([span, np.zeros((stop - start - len(span), samples.shape[1]), samples.dtype)])
    return span


class SoundTrack:
    """The sound of the passes made so far, in shot order (a backward chain prepends)."""

    def __init__(self, backward: bool = False):
        self.backward = backward
        self.parts: list[np.ndarray] = []
        self.rate: int | None = None

    def add(self, samples: np.ndarray, rate: int) -> None:
        if self.rate is not None and rate != self.rate:
            raise ValueError(f"sound of {rate} Hz after {self.rate} Hz")
        self.rate = rate
        if self.backward:
            self.parts.insert(0, samples)
        else:
            self.parts.append(samples)

    def write(self, folder, name: str) -> dict | None:
        """Write the track as ``name`` in ``folder`` (a ``safe_write.Folder``); the manifest's
        record of it (None when there is no sound)."""
        if not self.parts or self.rate is None:
            return None
        samples = np.concatenate(self.parts)
        digest = folder.write_bytes(name, wav_bytes(samples, self.rate))
        return {"path": name, "sample_rate": self.rate, "channels": int(samples.shape[1]),
                "seconds": round(len(samples) / self.rate, 4), "sha256": digest}


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """(N, C) float samples in [-1, 1] -> a 16-bit PCM WAV file's bytes."""
    pcm = (np.clip(np.nan_to_num(samples), -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(int(pcm.shape[1]))
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(np.ascontiguousarray(pcm).tobytes())
    return buffer.getvalue()
