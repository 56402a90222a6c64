"""Models bundled with sora_core."""
