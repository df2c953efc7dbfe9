"""Sweep pages: start one from an experiment, watch it (live charts), cancel it, adopt its best config."""
from django.contrib.auth.decorators import login_required
from django.http import Http404


@login_required
def sweep_start(request, experiment_id):
    raise Http404


@login_required
def sweep_page(request, sweep_id):
    raise Http404


@login_required
def sweep_charts(request, sweep_id):
    raise Http404


@login_required
def sweep_cancel(request, sweep_id):
    raise Http404


@login_required
def sweep_adopt(request, sweep_id):
    raise Http404
