"""``python -m moa.testing.upstream``: serve the scripted upstream as its own process."""

from moa.testing.upstream.server import main

main()
