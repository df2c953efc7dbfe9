def login(client, user, world):
    """Sign `user` in with the test password and work in the world's team (when a member of it)."""
    from django.urls import reverse

    assert client.login(username=user.username, password=world.password)
    client.post(reverse("team_switch"), {"team": world.team.slug})
    return client
