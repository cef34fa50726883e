"""``python -m tunescope``: the same as the ``tunescope`` command."""

from tunescope._entry import main

if __name__ == "__main__":
    main()
