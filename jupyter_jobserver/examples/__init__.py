"""Example scripts this package registers, so a new server has something to run."""
