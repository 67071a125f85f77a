"""fal.ai edit endpoints through fal's queue (submit, poll, fetch, cancel), one card each."""
