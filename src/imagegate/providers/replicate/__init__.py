"""Replicate predictions: queued image edits on Replicate's official models."""
