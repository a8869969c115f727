"""SAM3 after fine-tuning: exports back into ``sam3.pt``-compatible files (the trunk alone, or
the full image model with its spectral adapter) and the retention checks (trunk features,
SAM3's own answers to prompts)."""
