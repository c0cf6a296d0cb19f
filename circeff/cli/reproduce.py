"""`circeff reproduce` (placeholder until the predictions issue lands)."""


def reproduce() -> None:
    """Run everything and write a report (predictions issue)."""
    raise NotImplementedError
