"""The papers' experiments and the benchmarks: backbones compared under equal compute (compare,
report), what each codebook carries (codebooks), and speed (bench)."""
