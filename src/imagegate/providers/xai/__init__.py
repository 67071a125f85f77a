"""xAI Grok Imagine image edits (JSON only)."""
