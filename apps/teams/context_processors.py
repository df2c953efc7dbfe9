from functools import partial

from .selectors import invitations_for, teams_for


def teams(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    # A callable: the template calls it only where it shows invitations (the home page).
    return {"my_teams": teams_for(request.user), "current_team": request.team,
            "my_invitations": partial(invitations_for, request.user)}
