"""Generation: loading models and tokenizers, rendering prompts, seeded batched decoding, the generation
cache, the output store (replay, cache or model) and transcripts. Imports only ``spec``."""
