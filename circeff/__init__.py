"""circuit-efficiency: the paper 'Explaining grokking through circuit efficiency' as software.

Sub-packages (installed from the repository's top-level folders):

- ``circeff.theory``: Theorems D.1 and D.4, Lemmas D.2 and D.3, checked symbolically and numerically.
- ``circeff.toy``: the subweight gradient-descent simulation of Appendix C.
- ``circeff.empirical``: batched 1-layer transformers on modular arithmetic (Appendix A).
- ``circeff.analysis``: the code that links the three layers (predictions against measurements).

``circeff.load_model(folder)`` reads a model exported with ``circeff export --to hub`` (or one
model of a run folder) as the readable :class:`circeff.empirical.model.Transformer`.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_model"]


def __getattr__(name: str):  # noqa: ANN202
    """``circeff.load_model`` (:func:`circeff.empirical.hub.load_model`), imported on first use
    so that ``import circeff`` stays cheap (no torch)."""
    if name == "load_model":
        from circeff.empirical.hub import load_model

        return load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
