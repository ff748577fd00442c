"""Parameter sets of the six VSA strategies, one module each (spec 2.9, 3 and 4)."""
