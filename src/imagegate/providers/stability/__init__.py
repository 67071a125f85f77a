"""Stability AI v2beta Stable Image Edit endpoints, one card each."""
