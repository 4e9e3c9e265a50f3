"""Host services linked into a plugin's ``env`` module."""
