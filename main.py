"""Entry point for `cdktf synth`: one stack per config/<workspace>.yaml.

Also `python main.py drift [WORKSPACE...]` (constructs/drift.py) and `python main.py graph
[--check]` (constructs/apply_graph.py).
"""

import os
import sys
from pathlib import Path

from constructs.provider_modules import install

install()  # before anything imports a provider package: loads only the modules we use

from constructs.istio_app import main  # noqa: E402

if __name__ == "__main__":
    ROOT = Path(__file__).resolve().parent
    command, arguments = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("synth", [])
    if command == "drift":
        from constructs import drift

        sys.exit(drift.main(ROOT, arguments))
    if command == "graph":
        from constructs import apply_graph

        sys.exit(apply_graph.main(ROOT, arguments))
    if command != "synth" or arguments:
        print(f"usage: {sys.argv[0]} [drift [WORKSPACE...] | graph [--check]]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(ROOT, Path(os.environ.get("CDKTF_OUTDIR", ROOT / "cdktf.out"))))
