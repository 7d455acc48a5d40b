"""`python -m freqindex.cli`."""

from freqindex.cli import main

main()
