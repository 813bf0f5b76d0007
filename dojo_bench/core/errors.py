"""Errors the CLI turns into one clear line and an exit code."""


class DojoError(Exception):
    """A problem with the user's input or files; printed as one line, exit code 1."""

    exit_code = 1


class UsageError(DojoError):
    """A malformed command line: unknown verb or key, bad value. Exit code 2."""

    exit_code = 2
