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


@pytest.fixture
def experiment(world, dataset):
    from apps.experiments import services

    return services.experiment_create(team=world.team, user=world.editor, name="quick", dataset=dataset, config=QUICK)


@pytest.fixture
def finished_run(world, experiment):
    """A run of `experiment` trained in-process (the service the `train_run` task calls)."""
    from apps.experiments import services
    from apps.experiments.training import run_train

    run = services.run_start(experiment=experiment, user=world.editor)
    assert run_train(run_id=run.pk, worker="w@test") == "completed"
    run.refresh_from_db()
    return run
