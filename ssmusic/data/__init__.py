"""Training data: preparing a folder of audio into codec tokens (prepare), the datasets that read
them (datasets), captions files (captions), the synthetic demo corpus (demo, instruments) and
machine-written captions (autocaption)."""
