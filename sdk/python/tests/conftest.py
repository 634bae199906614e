import sys
from pathlib import Path

# The helper modules beside the tests (flk_pcs_reference, pcs_fake_gateway) must import under
# both pytest import modes: the repository root runs with --import-mode=importlib, which
# does not put test directories on sys.path.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
