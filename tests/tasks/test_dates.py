import datetime
import re

import pytest
import torch

from attnlab.tasks.dates import FIRST_DATE, FORMATS, LAST_DATE, DatesTask

# Each format's strptime pattern; "yy" formats need the 1950-2049 pivot applied.
PATTERNS = {
    "d_month_y": "%d %B %Y",
    "month_d_y": "%B %d, %Y",
    "d_mon_y": "%d %b %Y",
    "mon_d_y": "%b %d, %Y",
    "us_short": "%m/%d/%y",
    "us_long": "%m/%d/%Y",
    "dotted_ymd": "%Y.%m.%d",
    "dotted_dmy": "%d.%m.%Y",
    "weekday_short": "%a %d %b %Y",
    "weekday_long": "%A, %d %B %Y",
    "ordinal_of": "%d of %B %Y",
    "month_ordinal": "%B %d, %Y",
    "d_mon_yy": "%d-%b-%y",
    "compact": "%Y%m%d",
    "upper": "%d-%b-%Y",
}
ORDINAL = re.compile(r"\b(\d{1,2})(st|nd|rd|th)\b")


def _parse(text, pattern):
    """Parse with strptime; None if it does not match. Applies the 50 pivot to %y."""
    text = ORDINAL.sub(r"\1", text)
    try:
        parsed = datetime.datetime.strptime(text, pattern).date()
    except ValueError:
        return None
    if "%y" in pattern:
        parsed = parsed.replace(
            year=(1900 if parsed.year % 100 >= 50 else 2000) + parsed.year % 100
        )
    return parsed


def _all_dates(step=1):
    day = FIRST_DATE
    while day <= LAST_DATE:
        yield day
        day += datetime.timedelta(days=step)


def test_every_format_has_a_pattern():
    assert [name for name, _ in FORMATS] == list(PATTERNS)


@pytest.mark.parametrize(("name", "fmt"), FORMATS, ids=[name for name, _ in FORMATS])
def test_format_parses_back(name, fmt):
    for day in _all_dates(step=29):
        assert _parse(fmt(day), PATTERNS[name]) == day, fmt(day)


def test_ordinals():
    ordinal = dict(FORMATS)["ordinal_of"]
    days = [datetime.date(2001, 1, d) for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)]
    assert [ordinal(d).split()[0] for d in days] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "23rd",
        "31st",
    ]


def test_two_digit_year_pivot():
    short = dict(FORMATS)["us_short"]
    assert short(datetime.date(1950, 1, 2)) == "01/02/50"
    assert short(datetime.date(2049, 12, 31)) == "12/31/49"


def test_strings_determine_the_date_and_fit_the_task():
    task = DatesTask()
    seen = {}
    for day in _all_dates():
        for _, fmt in FORMATS:
            text = fmt(day)
            assert seen.setdefault(text, day) == day, text
    assert max(len(text) for text in seen) == task.max_src_len == 28
    task.vocab.encode("".join(set("".join(seen))))  # every character is in the vocabulary


@pytest.mark.parametrize("split", ["train", "val"])
def test_samples_parse_to_their_target(split):
    task = DatesTask(seq_length=5)
    batch = task.batch(split, 400, torch.Generator().manual_seed(0))
    names = set()
    for src, tgt in zip(batch.src, batch.tgt, strict=True):
        source, target = task.vocab.decode(src), task.decode_output(tgt)
        matches = {n: _parse(source, p) for n, p in PATTERNS.items() if _parse(source, p)}
        assert set(matches.values()) == {datetime.date.fromisoformat(target)}, source
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", target)
        names.update(matches)
    assert names == set(PATTERNS)


def test_splits_are_disjoint():
    task = DatesTask()
    train = set(task.examples("train", 3000, seed=1))
    val = set(task.examples("val", 600, seed=2))
    assert not {s for s, _ in train} & {s for s, _ in val}
    assert all(DatesTask().split_of(s) == "val" for s, _ in val)
    assert min(datetime.date.fromisoformat(t).year for _, t in train) < 1955
    assert max(datetime.date.fromisoformat(t).year for _, t in train) > 2044
