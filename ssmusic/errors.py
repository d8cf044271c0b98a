"""The one exception type users see: the CLI prints its message as a single line, no traceback."""


class SsmusicError(Exception):
    """Bad input or a missing resource. The message names the file/field and what was expected."""


class ConfigError(SsmusicError, ValueError):
    """A config file or value that cannot be used; the message names the field."""
