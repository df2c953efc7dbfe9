from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.teams.models import Membership
from apps.teams.services import user_upsert


class Command(BaseCommand):
    help = "Create a user (or set a new password), create the team if missing, and set the membership."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--team", required=True, help="The team's slug; created when missing.")
        parser.add_argument("--role", choices=Membership.Role.values,
                            help="owner, editor or viewer (default: owner of a new team, editor of an existing one).")

    def handle(self, *args, username, password, team, role, **options):
        if not username.strip() or not password:
            raise CommandError("Give a username and a non-empty password.")
        try:
            user, team_obj, created = user_upsert(username=username.strip(), password=password, team_slug=team,
                                                  role=role)
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from exc
        role_now = team_obj.memberships.get(user=user).role
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} user {user.username}: {role_now} of team {team_obj.slug}.")
