"""The one exception type users see: the CLI prints its message as a single line, no traceback."""


class SsmusicError(Exception):
    """Bad input or a missing resource. The message names the file/field and what was expected."""


class ConfigError(SsmusicError, ValueError):
    """A config file or value that cannot be used; the message names the field."""


class BadValue(SsmusicError, ValueError):
    """One argument outside its rule. `name` is the argument as the Python API and the web API's JSON
    spell it (top_k); the message names it as the CLI flag (--top-k), and `worded(label)` as another
    front end calls it, so each rule is written once and every front end reports it in its own words."""

    def __init__(self, name: str, expected: str, got: object, *, got_text: str | None = None) -> None:
        self.name, self.expected, self.got = name, expected, got
        self.got_text = shown(got) if got_text is None else got_text
        super().__init__(self.worded("--" + name.replace("_", "-")))

    def worded(self, label: str) -> str:
        return f"{label}: expected {self.expected}, got {self.got_text}"


def shown(value: object, limit: int = 60) -> str:
    """A value for an error message: short, and never a 5,000-digit integer converted to text
    (which Python refuses beyond 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"a number of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
