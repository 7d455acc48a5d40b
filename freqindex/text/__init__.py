"""Normalization (one versioned function per name) and tokenizers (bytes | Hugging Face)."""
