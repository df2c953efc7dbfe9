from django import forms

from .models import Membership


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="They join when they accept the invitation on their home "
                                                         "page; until then nothing of theirs changes.")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.EDITOR,
                             help_text="Viewers read; editors upload and train; owners also manage members.")


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="You become its owner and can add members.")


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, initial="API token",
                           help_text="A name to recognise it by, such as the script or machine that uses it.")


class TeamSwitchForm(forms.Form):
    team = forms.SlugField()
