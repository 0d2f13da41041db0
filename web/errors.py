"""The core's errors in the words of the page and the HTTP API: the message, and what to do
about it where the server's user can do something."""

from inference.loading import (
    ModelChoiceError,
    NoDefaultModelError,
    RevisionOfFolderError,
    UntrustedCodeError,
)
from search.errors import (
    BadQueryError,
    IndexLockedError,
    NoIndexError,
    SearchError,
    UnknownPhotoError,
    WrongModelError,
)
from search.fingerprint import ModelMismatchError

HINTS = {
    ModelMismatchError: "start the page without --model to use the index's own model, or "
    "embed every image again with `python cli.py index FOLDER --index INDEX --reembed`",
    RevisionOfFolderError: "drop --revision",
    UntrustedCodeError: "the page loads Turkish CLIP models only",
    NoDefaultModelError: "start the page with --model FOLDER_OR_HUB_ID",
    NoIndexError: "build one with `python cli.py index FOLDER --index INDEX` and start the "
    "page with --index INDEX",
    WrongModelError: "the index was built with another model: start the page with the index's "
    "own model (leave out --model)",
    IndexLockedError: "try again in a moment",
}

# HTTP statuses of the API's answers.
STATUSES = {
    BadQueryError: 400,
    UnknownPhotoError: 404,
    NoIndexError: 404,
    WrongModelError: 409,
    IndexLockedError: 503,
}


def describe(error: BaseException) -> str:
    """One line: the error's message, with its hint for the core's errors."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (SearchError, ModelChoiceError)):
        for kind, hint in HINTS.items():
            if isinstance(error, kind):
                return f"{message} ({hint})"
    return message


def status_of(error: BaseException) -> int:
    for kind, status in STATUSES.items():
        if isinstance(error, kind):
            return status
    return 400 if isinstance(error, SearchError) else 500
