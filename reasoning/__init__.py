"""Reasoning: prompts, the model client, answer parsing, confidence and the case task."""
