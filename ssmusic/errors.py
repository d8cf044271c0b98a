"""The one exception type users see: the CLI prints its message as a single line, no traceback."""


class SsmusicError(Exception):
    """Bad input or a missing resource. The message names the file/field and what was expected."""
