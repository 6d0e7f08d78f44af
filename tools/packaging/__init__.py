"""`make package` and `make lock`: the Lambda artifacts (`build`) and the pins (`lock`)."""


class PackagingError(Exception):
    """A build that cannot produce valid artifacts; the message says what to do."""
