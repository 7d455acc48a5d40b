"""Embedders (a registry under versioned names) and FAISS index build/search (CPU; GPU when present)."""
