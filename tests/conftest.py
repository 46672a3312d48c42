import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the tests' shared helpers module

from hypothesis import settings

# Property tests draw the same examples on every run (CI included): every stochastic thing in
# the test suite is seeded.
settings.register_profile("kabuto", derandomize=True, database=None)
settings.load_profile("kabuto")
