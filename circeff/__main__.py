"""``python -m circeff``: the same as the ``circeff`` command."""

from circeff.cli.main import main

if __name__ == "__main__":
    main()
