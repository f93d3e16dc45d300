"""`python -m ccpt` runs the same CLI as the `ccpt` console script."""

from ccpt.app import main

if __name__ == "__main__":
    main()
