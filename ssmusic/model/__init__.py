"""The language model: `MusicLM` (lm) built from blocks (blocks, layers, mamba2), its decode state
(state), sampling and codebook patterns, size presets, and the fast decode paths (ops, compiled,
decode_weights) that are tested against the reference recurrence."""
