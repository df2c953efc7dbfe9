from django.utils.functional import SimpleLazyObject

from .selectors import teams_for

SESSION_KEY = "team"


def current_team(request):
    """The team the user chose in the switcher, else their personal (or first) team."""
    if not request.user.is_authenticated:
        return None
    teams = teams_for(request.user)
    chosen = request.session.get(SESSION_KEY)
    return (chosen and teams.filter(slug=chosen).first()) or teams.first()


class CurrentTeamMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.team = SimpleLazyObject(lambda: current_team(request))
        return self.get_response(request)
