"""GPU naming, counting and the multi-context inventory."""
