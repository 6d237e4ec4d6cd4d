"""OpenAI-compatible routes of the gateway (chat and text completions, model list)."""
