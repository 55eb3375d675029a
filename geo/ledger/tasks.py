"""Tasks: the office assigns a compound's problem to a department with a due day (分派交办),
the department answers (分类处置), the office closes it (限时办结).

Overdue (逾期) is not stored: a task not done whose due day has passed in Beijing — one rule,
`is_overdue` in Python and `OVERDUE_SQL` in queries, both against geo.core.dates.today().
"""

from datetime import date

from geo.core.dates import today
from geo.core.work import TaskStatus

# A task row `t` not done whose due day is before :today (Beijing's day, passed in).
OVERDUE_SQL = "(t.status <> 'done' AND t.due_on < :today)"


def is_overdue(status: str, due_on: date, on: date | None = None) -> bool:
    """Whether a task is late on day `on` (today in Beijing by default): due before it and
    not done. Due today is not late yet."""
    return status != TaskStatus.DONE and due_on < (on or today())
