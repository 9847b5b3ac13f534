"""Adapters to third-party systems (LlamaIndex, vLLM plugin entry point, Ray)."""
