"""The photo-search core's errors, typed so that each front door (command line, web page, HTTP
API) can word them in its own terms: a flag to pass, a button to press, a status code.

Messages name the index and what is wrong with it, never a command-line flag.
"""


class SearchError(ValueError):
    """Something the caller asked of an index cannot be done; the message says why."""


class NoIndexError(SearchError):
    """The folder holds no index yet (or is not there)."""


class EmptyIndexError(SearchError):
    """The index holds no photo."""


class IndexDamagedError(SearchError):
    """The index's files are missing, malformed or disagree with each other."""


class WrongModelError(SearchError):
    """The index was built with another model (another name, other weights or other
    preprocessing, or another embedding width): its rows and this model's queries do not share a
    space."""


class WrongFolderError(SearchError):
    """The index holds the photos of another folder."""


class IndexLockedError(SearchError, TimeoutError):
    """Another process is updating the index and did not finish within the wait."""


class BadQueryError(SearchError):
    """A query, filter, threshold or count that cannot be used; the message names it."""


class UnknownPhotoError(SearchError):
    """No photo of the index has this id."""
