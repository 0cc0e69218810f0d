"""`python -m hyperlaw.executors.spawn FD`: the command a local worker process runs."""

import sys

from hyperlaw.executors.worker import main

if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
