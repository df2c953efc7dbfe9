import pytest

from tests.support.datasets import ready_dataset

# A run that trains in well under a second on the tiny dataset.
QUICK = {"epochs": 2, "batch_size": 8, "hidden_units": [16], "seed": 1}


@pytest.fixture(autouse=True)
def data_dir(isolated_data_dir):
    return isolated_data_dir


@pytest.fixture
def dataset(world, tmp_path):
    return ready_dataset(world.team, tmp_path / "light-dark.zip")
