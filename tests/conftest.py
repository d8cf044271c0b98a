import os

import pytest
import torch

# Tests run in parallel (pytest -n 2): one thread per worker avoids oversubscribing 2 cores.
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
