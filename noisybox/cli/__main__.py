"""``python -m noisybox.cli ...``: the ``noisybox`` command without its console script."""

from noisybox.cli import main

main()
