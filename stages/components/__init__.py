"""Reusable constructs, one per logical unit; the stacks in `stages/` wire them together."""
