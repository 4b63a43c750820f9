"""Entry point for `cdktf synth`: one stack per config/<workspace>.yaml."""

import os
import sys
from pathlib import Path

from constructs.provider_modules import install

install()  # before anything imports a provider package: loads only the modules we use

from constructs.istio_app import main  # noqa: E402

if __name__ == "__main__":
    ROOT = Path(__file__).resolve().parent
    sys.exit(main(ROOT, Path(os.environ.get("CDKTF_OUTDIR", ROOT / "cdktf.out"))))
