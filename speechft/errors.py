"""The one exception type the CLI turns into a clean message instead of a traceback."""


class SpeechftError(Exception):
    """A user-facing error: the message names the item, the problem and the fix."""
