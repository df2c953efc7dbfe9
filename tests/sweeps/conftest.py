import pytest


@pytest.fixture(autouse=True)
def data_dir(isolated_data_dir):
    return isolated_data_dir
