"""The base of every error resdropnet raises for bad input; the CLI turns them into one clear line."""


class ResDropNetError(Exception):
    """Bad input: a file, row, member or field that cannot be used; the message names it."""
