"""``python -m bench``: run the whole harness (see ``bench/README.md``)."""

from bench.run import main

main()
