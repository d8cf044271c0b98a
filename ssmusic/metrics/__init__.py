"""Judges of generated audio: a pretrained music network (musicnn) for a Fréchet distance with its
real-vs-real floor, tag KL and tag adherence; motion (frozen runs, onsets), tempo and key against real
clips; statistics (n, 95% intervals, seeds); and the earlier offline judges (mel-stats FAD, an
instrument classifier's KL and adherence, CLAP score). `ssmusic.metrics.evaluate.evaluate` runs them."""
