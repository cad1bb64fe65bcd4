"""Date normalisation: human-written English dates -> ISO 8601 (``YYYY-MM-DD``).

Dates are uniform over 1950-01-01 .. 2049-12-31 and formats uniform over ``FORMATS``.
Two-digit years pivot at 50: ``50``-``99`` mean 1950-1999 and ``00``-``49`` mean
2000-2049, so within the range every two-digit year is unambiguous. Slashes always
put the month first (US: ``03/04/94`` is 4 March); dots put the day first unless the
year leads (``04.03.1994`` and ``1994.03.04`` are both 4 March). No string is produced
by two different dates. Month and weekday names are written out here, not taken from
the locale.
"""

import datetime
import functools
import random
from collections.abc import Callable

from attnlab.tasks.base import Vocab, check_seq_length
from attnlab.tasks.sequences import Seq2SeqTask

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)


def _month(d: datetime.date) -> str:
    return MONTHS[d.month - 1]


def _mon(d: datetime.date) -> str:
    return MONTHS[d.month - 1][:3]


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# (name, formatter); the examples are for Thursday 1994-03-03.
FORMATS: tuple[tuple[str, Callable[[datetime.date], str]], ...] = (
    ("d_month_y", lambda d: f"{d.day} {_month(d)} {d.year}"),  # 3 March 1994
    ("month_d_y", lambda d: f"{_month(d)} {d.day}, {d.year}"),  # March 3, 1994
    ("d_mon_y", lambda d: f"{d.day} {_mon(d)} {d.year}"),  # 3 Mar 1994
    ("mon_d_y", lambda d: f"{_mon(d)} {d.day}, {d.year}"),  # Mar 3, 1994
    ("us_short", lambda d: f"{d.month:02}/{d.day:02}/{d.year % 100:02}"),  # 03/03/94
    ("us_long", lambda d: f"{d.month:02}/{d.day:02}/{d.year}"),  # 03/03/1994
    ("dotted_ymd", lambda d: f"{d.year}.{d.month:02}.{d.day:02}"),  # 1994.03.03
    ("dotted_dmy", lambda d: f"{d.day:02}.{d.month:02}.{d.year}"),  # 03.03.1994
    ("weekday_short", lambda d: f"{WEEKDAYS[d.weekday()][:3]} {d.day} {_mon(d)} {d.year}"),
    ("weekday_long", lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} {_month(d)} {d.year}"),
    ("ordinal_of", lambda d: f"{_ordinal(d.day)} of {_month(d)} {d.year}"),  # 3rd of March 1994
    ("month_ordinal", lambda d: f"{_month(d)} {_ordinal(d.day)}, {d.year}"),  # March 3rd, 1994
    ("d_mon_yy", lambda d: f"{d.day}-{_mon(d)}-{d.year % 100:02}"),  # 3-Mar-94
    ("compact", lambda d: f"{d.year}{d.month:02}{d.day:02}"),  # 19940303
    ("upper", lambda d: f"{d.day:02}-{_mon(d).upper()}-{d.year}"),  # 03-MAR-1994
)


@functools.lru_cache(maxsize=1)
def _alphabet_and_longest() -> tuple[str, int]:
    """Characters used and the longest source, over 2000-2027 (every calendar of the range)."""
    chars = set("0123456789-")
    longest = 0
    day = datetime.date(2000, 1, 1)
    while day.year < 2028:
        for _, fmt in FORMATS:
            text = fmt(day)
            chars.update(text)
            longest = max(longest, len(text))
        day += datetime.timedelta(days=1)
    return "".join(sorted(chars)), longest


class DatesTask(Seq2SeqTask):
    """Rewrite a human-written date in ISO 8601: ``"Thu 3 Mar 1994"`` -> ``"1994-03-03"``.

    Fifteen formats (``FORMATS``; see the module docstring for the two-digit-year pivot
    and the slash/dot conventions). Splits and metrics are those of ``Seq2SeqTask``:
    the split is by hash of the source string, which fixes both date and format.

    Args:
        seq_length: Accepted so every task is built alike; validated, otherwise unused
            (the formats fix the lengths: ``max_src_len`` 28, ``max_tgt_len`` 12).

    Raises:
        TypeError: If ``seq_length`` is not an int.
        ValueError: If ``seq_length`` < 1.

    Example:
        >>> FORMATS[12][1](datetime.date(1994, 3, 3))
        '3-Mar-94'
        >>> task = DatesTask()
        >>> source, target = task.examples("val", 1, seed=0)[0]
        >>> datetime.date.fromisoformat(target) <= LAST_DATE
        True
    """

    name = "dates"

    def __init__(self, seq_length: int = 10) -> None:
        self.seq_length = check_seq_length(seq_length)
        alphabet, longest = _alphabet_and_longest()
        super().__init__(
            vocab=Vocab(alphabet),
            max_src_len=longest,
            max_tgt_len=len("1994-03-03") + 2,
            description=f"dates: {len(FORMATS)} English formats, "
            f"{FIRST_DATE.year}-{LAST_DATE.year}, to ISO 8601",
        )

    def _sample(self, rng: random.Random) -> tuple[str, str]:
        day = FIRST_DATE + datetime.timedelta(days=rng.randrange((LAST_DATE - FIRST_DATE).days + 1))
        _, fmt = rng.choice(FORMATS)
        return fmt(day), day.isoformat()
