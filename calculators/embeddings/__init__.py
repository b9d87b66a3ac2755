"""Embeddings: OVMS's EmbeddingsCalculatorOV, on our own calculator and resource."""
