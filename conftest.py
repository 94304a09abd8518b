"""Collection settings shared by the tests and the package's doctests (both are testpaths).

``noisybox.detectors.ultralytics`` needs the optional Ultralytics extra: its doctests are
skipped without it. With it, Ultralytics is pointed at a temporary config folder and kept
off the network before anything imports it (it checks for a connection at import).
"""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import tempfile

collect_ignore: list[str] = []
if importlib.util.find_spec("ultralytics") is None:
    collect_ignore.append("noisybox/detectors/ultralytics.py")
else:
    from noisybox.detectors.ultralytics_offline import configure_offline

    _config_dir = tempfile.mkdtemp(prefix="noisybox-ultralytics-")
    atexit.register(shutil.rmtree, _config_dir, ignore_errors=True)
    configure_offline(_config_dir)
