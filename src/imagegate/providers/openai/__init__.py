"""OpenAI's Images API: gpt-image-1, 1.5, 1-mini, 2 and dall-e-2 edits (dall-e-3 is listed,
generate only)."""
