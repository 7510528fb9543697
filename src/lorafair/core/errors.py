"""The one exception type for mistakes a user can make (bad paths, columns, adapters...).

`cli.main` prints it as one line and exits with code 2; anything else is a bug and keeps its traceback.
"""


class LorafairError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""
