"""Entry point of the single-file `contacts-server` binary.

The same CLI as `python -m contacts_service`.
"""

import multiprocessing
import sys

from contacts_service.__main__ import main

if __name__ == "__main__":
    # A no-op unless something re-executes the binary as a multiprocessing child; gunicorn
    # itself forks its workers, which inherit the already unpacked, already imported program.
    multiprocessing.freeze_support()
    sys.exit(main())
