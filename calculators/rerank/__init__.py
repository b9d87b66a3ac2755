"""Rerank: OVMS's RerankCalculatorOV, on our own calculator and resource."""
