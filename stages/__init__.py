"""The deployable Stage of Yoctogram: configuration, stacks and their reusable constructs."""
