"""`python -m hyperlaw ...` runs the `hyperlaw` command."""

from hyperlaw.cli import main

if __name__ == "__main__":
    main()
