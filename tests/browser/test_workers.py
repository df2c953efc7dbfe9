"""The home page's workers table follows /api/health without a reload (static/js/workers.js)."""
import pytest
from playwright.sync_api import expect

from tests.support.browser import SCREENSHOTS
from workers import presence

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

H200 = {"index": 3, "name": "NVIDIA H200", "utilization": 87, "memory_used_mb": 40960, "memory_total_mb": 143771,
        "temperature_c": 41}


def test_the_workers_table_is_live_and_says_cpu_without_a_gpu(page, live_server, sign_in, world, celery_workers,
                                                               redis_server):
    sign_in(page, "olivia", world.password)
    trainer = page.locator(f'#workers-table tr[data-worker="{celery_workers.train.name}"]')
    expect(trainer).to_contain_text("CPU")
    expect(trainer.locator("td.num").first).to_contain_text("%")
    expect(page.locator("#workers-updated")).to_contain_text("Updated")  # a refresh has come in

    # A worker that starts after the page was loaded appears without a reload: here the announcement a
    # training worker on a GPU machine makes, written as it writes it.
    conn = presence.client(redis_server.url)
    presence.announce(conn, name="gpu0@elsewhere", queues=["train"], device="NVIDIA H200",
                      status={"cpu_percent": 101.4, "memory_mb": 2345, "gpus": [H200]})
    newcomer = page.locator('#workers-table tr[data-worker="gpu0@elsewhere"]')
    try:
        expect(newcomer).to_contain_text("NVIDIA H200", timeout=20_000)
        expect(newcomer).to_contain_text("87 % · 40960 / 143771 MB · 41 °C")
        expect(newcomer).to_contain_text("GPU 3")
        expect(newcomer).to_contain_text("101 %")
        expect(newcomer).to_contain_text("2345 MB")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#workers").screenshot(path=str(SCREENSHOTS / "home-workers-live.png"))
    finally:
        presence.withdraw(conn, name="gpu0@elsewhere")
    # Missing from the next answer: greyed, said to be gone.
    expect(newcomer).to_have_class("gone", timeout=20_000)
    expect(newcomer.locator(".busy")).to_have_text("gone")
    expect(trainer).not_to_have_class("gone")


def test_a_busy_worker_links_its_run_whose_page_shows_its_speed(page, live_server, sign_in, world, dataset,
                                                               celery_workers):
    from apps.experiments.services import experiment_create
    from apps.runs.models import Run
    from apps.runs.services import run_cancel, run_start
    from tests.support.factories import QUICK
    from tests.support.services import wait_until

    experiment = experiment_create(team=world.team, user=world.editor, name="long", dataset=dataset,
                                   config={**QUICK, "epochs": 1000})
    run = run_start(experiment=experiment, user=world.editor)
    try:
        run = wait_until(lambda: Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).first(), timeout=120,
                         interval=0.2, message="the run to train")
        sign_in(page, "eddie", world.password)
        busy = page.locator(f'#workers-table tr[data-worker="{run.worker}"] .busy a')
        expect(busy).to_have_text(f"run {run.pk}", timeout=20_000)
        busy.click()
        page.wait_for_url(f"{live_server.url}/runs/{run.pk}/")
        # The latest epoch's throughput, kept up to date as epochs arrive; a CPU has no GPU memory to show.
        expect(page.locator("#run-speed")).to_contain_text("images/s · CPU", timeout=30_000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("#run-status-card").screenshot(path=str(SCREENSHOTS / "run-speed.png"))
    finally:
        run_cancel(run=run)
        wait_until(lambda: Run.objects.filter(pk=run.pk, status__in=Run.FINISHED_STATUSES).exists(), timeout=30,
                   interval=0.2, message="the run to stop")
