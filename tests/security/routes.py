"""Every route of the URL configuration, found by walking the resolver, with the HTTP methods its view
declares: what the sweeps in this folder iterate over, so a new page or endpoint is covered the day
it is added. A route whose object kwarg has no entry in OBJECT_KWARGS (conftest.py) fails the sweeps.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ACTING = ("POST", "PUT", "PATCH", "DELETE")

# Routes the sweeps leave out, each with the reason. Everything else is swept.
NOT_SWEPT = {
    "admin": "Django's admin (namespace admin:): staff only, with its own permission checks; "
             "test_idor.py::test_the_admin_turns_away_users_who_are_not_staff covers it",
}
# Routes that answer without authentication on purpose.
PUBLIC = {
    "api_health": "health for load balancers and monitors: no authentication, no secrets",
    "api_token": "exchanges a username and password for a token: the sign-in throttle guards it",
    "login": "the sign-in page itself",
    "logout": "signing out asks for no account (POST only; CSRF-checked like every form)",
}


@dataclass(frozen=True)
class Route:
    name: str                 # the URL name, with its namespace ("admin:index")
    pattern: str              # "api/runs/<int:run_id>/cancel"
    kwargs: tuple[str, ...]   # the path's parameters, in order
    callback: object

    @property
    def namespace(self) -> str:
        return self.name.split(":")[0] if ":" in self.name else ""

    @property
    def is_api(self) -> bool:
        return self.pattern.startswith("api/")

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m for m in METHODS if m in declared_methods(self.callback))

    def url(self, values: dict) -> str:
        return reverse(self.name, kwargs={k: values[k] for k in self.kwargs})

    def __str__(self):
        return self.name


def declared_methods(callback) -> set[str]:
    """The methods a view answers: a DRF or class-based view's handlers, or the list a function view
    was wrapped with by require_http_methods (require_POST, require_safe). A function view without one
    answers every method, which the sweeps then expect of it."""
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is not None:
        return {m.upper() for m in view_class.http_method_names
                if m not in ("options", "head", "trace") and hasattr(view_class, m)}
    func = callback
    while func is not None:
        code = getattr(func, "__code__", None)
        if code is not None and "request_method_list" in code.co_freevars:
            cell = func.__closure__[code.co_freevars.index("request_method_list")]
            return {m for m in cell.cell_contents if m != "HEAD"}
        func = getattr(func, "__wrapped__", None)
    return set(METHODS)


def _walk(patterns, prefix: str, namespace: str, kwargs: tuple[str, ...]):
    for entry in patterns:
        names = tuple(_parameters(entry.pattern))
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner, kwargs + names)
        elif isinstance(entry, URLPattern):
            name = ":".join(filter(None, [namespace, entry.name or str(entry.pattern)]))
            yield Route(name=name, pattern=prefix + str(entry.pattern), kwargs=kwargs + names,
                        callback=entry.callback)


def _parameters(pattern) -> list[str]:
    converters = getattr(pattern, "converters", None)
    if converters:
        return list(converters)
    regex = getattr(pattern, "regex", None)
    return list(regex.groupindex) if regex is not None else []


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns, "", "", ()))


def swept_routes() -> list[Route]:
    return [r for r in all_routes() if r.namespace not in NOT_SWEPT]


def object_routes() -> list[Route]:
    """Routes that name an object in their path: the IDOR sweep's."""
    return [r for r in swept_routes() if r.kwargs]
