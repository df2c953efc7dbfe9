from .selectors import teams_for


def teams(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"my_teams": teams_for(request.user), "current_team": request.team}
