import pytest
from playwright.sync_api import expect

from tests.support.browser import switch_team
from tests.support.factories import make_experiment, ready_dataset, trained_run
from workers.engine import build_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def parameters(config, *, classes=2, channels=1, size=28):
    model = build_model(config, num_classes=classes, channels=channels, image_size=size)
    return sum(p.numel() for p in model.parameters())


def total_shown(page):
    return page.locator("#model-summary-total").get_attribute("data-value")


def test_the_form_summarises_the_network_as_the_settings_change(page, live_server, sign_in, world, tmp_path):
    ready_dataset(world.team, tmp_path / "ld.zip", size=28)  # 28 px grayscale, two classes
    sign_in(page, "eddie", world.password)
    switch_team(page, world.team.slug)
    page.goto(f"{live_server.url}/experiments/new")

    summary = page.locator("#model-summary")
    expect(summary).to_contain_text("Parameters are the weights the network learns")  # it explains itself
    smallcnn = parameters({"arch": "smallcnn"})
    expect(page.locator("#model-summary-total")).to_have_attribute("data-value", str(smallcnn))
    expect(page.locator("#model-summary-total")).to_have_text(f"{smallcnn:,}")
    expect(page.locator("#model-summary-input")).to_have_text("1 × 28 × 28, 2 classes")
    expect(page.locator(".model-summary-warning")).to_have_count(0)

    page.select_option("#id_arch", "resnet18")
    resnet = parameters({"arch": "resnet18"})
    expect(page.locator("#model-summary-total")).to_have_attribute("data-value", str(resnet))
    page.click("#model-summary-layers summary")
    expect(page.locator(".model-summary-table tbody tr").first).to_contain_text("features.conv1")
    expect(page.locator(".model-summary-table tbody tr").last).to_contain_text("2")  # the head's two classes

    page.fill("#id_hidden_units", "256,64")
    wider = parameters({"arch": "resnet18", "hidden_units": [256, 64]})
    expect(page.locator("#model-summary-total")).to_have_attribute("data-value", str(wider))

    page.fill("#id_freeze_backbone_epochs", "2")
    expect(page.locator("#model-summary-trainable")).to_contain_text("(backbone frozen)")

    page.fill("#id_hidden_units", "lots")
    expect(page.locator("#model-summary-error")).to_contain_text("hidden_units must be a list")
    page.fill("#id_hidden_units", "128")

    page.select_option("#id_arch", "alexnet")
    warning = page.locator(".model-summary-warning")
    expect(warning).to_have_text("alexnet is meant for images of at least 63 px and these are 28 px; a network "
                                 "for small images (smallcnn, lenet5) suits them better.")
    expect(warning).to_be_visible()
    assert total_shown(page) == str(parameters({"arch": "alexnet"}))
    page.locator("#model-summary").screenshot(path=str(tmp_path / "summary.png"))


def test_the_run_page_shows_its_model(page, live_server, sign_in, world, tmp_path):
    dataset = ready_dataset(world.team, tmp_path / "ld.zip", size=28)
    run = trained_run(make_experiment(world.team, world.editor, dataset), world.editor)
    sign_in(page, "vera", world.password)  # viewers see it too
    page.goto(f"{live_server.url}/runs/{run.pk}/")
    expect(page.locator("#model-summary-total")).to_have_attribute("data-value", str(parameters(run.config)))
    expect(page.locator("#model-summary-mult-adds")).not_to_have_text("—")
    expect(page.locator("#model-summary-layer-count")).not_to_have_text("…")
