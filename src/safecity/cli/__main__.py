"""``python -m safecity.cli``: the same as the ``safecity`` command."""

from safecity.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
