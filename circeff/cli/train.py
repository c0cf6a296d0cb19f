"""`circeff train` (to be filled in by the engine issue)."""


def train() -> None:
    """Train batched 1-layer transformers (engine issue)."""
    raise NotImplementedError
