"""Hybrid retrieval over the index: dense and lexical candidates fused, one hit per paper."""
