"""`python -m hyperlaw.cli ...` runs the `hyperlaw` command."""

from hyperlaw.cli import main

if __name__ == "__main__":
    main()
