"""Request rates as the settings and the throttles read them: "3000/min" -> (3000, 60). Free of Django,
so settings.py can check DLSTUDIO_*_RATE when the site starts instead of failing on a request."""
PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
           "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """(requests, seconds); ValueError for anything but "<count>/<period>"."""
    count, _, period = str(rate).partition("/")
    if not count.strip().isdigit() or period.strip().lower() not in PERIODS:
        raise ValueError(f"not a rate: {rate!r}")
    return int(count), PERIODS[period.strip().lower()]
