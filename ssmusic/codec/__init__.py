"""Audio <-> tokens: the codec protocol and loader (codecs), the shipped transform codec (transform,
mel), and decoding tokens to audio chunk by chunk while they are generated (stream)."""
