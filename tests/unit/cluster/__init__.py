"""negsamp.cluster tests (a package, so its module names do not collide with others)."""
