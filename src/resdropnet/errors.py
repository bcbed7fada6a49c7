"""The base of every error resdropnet raises for bad input; the CLI turns them into one clear line."""


class ResDropNetError(Exception):
    """Bad input: a file, row, member or field that cannot be used; the message names it."""


def first_line(error: BaseException) -> str:
    """The gist of a library's exception for a one-line message: its first line, at most 300 characters."""
    text = getattr(error, "msg", None) or str(error)  # cv2.error keeps the bare reason in .msg
    return (str(text).strip().splitlines() or [type(error).__name__])[0][:300]
