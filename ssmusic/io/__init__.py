"""Files in and out: atomic writes, audio files, safetensors checks, growing WAVs for streaming,
the local cache, and loading pretrained parts from a hub or a local folder."""
