"""The one error configuration raises, so start-up can report it plainly."""


class ConfigError(Exception):
    """A setting is unknown, malformed or inconsistent."""
