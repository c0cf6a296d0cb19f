"""circuit-efficiency: the paper 'Explaining grokking through circuit efficiency' as software.

Sub-packages (installed from the repository's top-level folders):

- ``circeff.theory``: Theorems D.1 and D.4, Lemmas D.2 and D.3, checked symbolically and numerically.
- ``circeff.toy``: the subweight gradient-descent simulation of Appendix C.
- ``circeff.empirical``: batched 1-layer transformers on modular arithmetic (Appendix A).
- ``circeff.analysis``: the code that links the three layers (predictions against measurements).
"""

__version__ = "0.1.0"
