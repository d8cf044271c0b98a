"""Numerical kernels: the Mamba2 state-space scan (pure PyTorch) and optional fused CUDA kernels."""
