"""Evaluation metrics of the papers: Fréchet distance of audio embeddings (FAD), KL divergence of
classifier label distributions, CLAP text-audio score. `ssmusic.metrics.evaluate.evaluate` runs them."""
