"""`worldgen batch` in a child process with the test backends of _batch_plugin available to the
driver and to its workers (for the interrupt-and-resume test), whose reports get small previews
(_small_previews_plugin: nothing in that test reads them).

Usage: python _batch_driver.py batch JOBS -o ROOT [options]
"""

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _batch_plugin  # noqa: E402,F401
import _small_previews_plugin  # noqa: E402,F401  (LocalExecutor finds the workers' plugins in sys.modules)

from worldgen.batch import LocalExecutor  # noqa: E402
from worldgen.cli import batch as cli_batch  # noqa: E402
from worldgen.cli.main import main  # noqa: E402

cli_batch.LocalExecutor = functools.partial(LocalExecutor, gpus=[], plugins=("_batch_plugin", "_small_previews_plugin"))
sys.exit(main(sys.argv[1:]))
