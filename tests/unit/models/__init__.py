"""Model tests (a package, so its module names do not collide with tests/unit/samplers)."""
