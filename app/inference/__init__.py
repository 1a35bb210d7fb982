"""OpenAI-compatible inference: POST /v1/chat/completions and /v1/completions, forwarded to inference processes."""
