"""The projection of DPHP events into the recap (CONTRACT 3). `fold` is the pure reference."""

from services.projection.fold import (
    DEFAULT_TPS_CAPACITY,
    DEFAULT_VOTING_DAY,
    MeetingView,
    Projection,
    eligibility_cutoff,
    fold,
    is_eligible,
    order_key,
    recap_as_of,
)
from services.projection.recap import (
    LEVELS,
    RecapRow,
    comparable_meetings,
    comparable_report,
    nonzero,
    recaps_equal,
    report_json,
    select_rows,
)

__all__ = [
    "DEFAULT_TPS_CAPACITY", "DEFAULT_VOTING_DAY", "LEVELS", "MeetingView", "Projection", "RecapRow",
    "comparable_meetings", "comparable_report", "eligibility_cutoff", "fold", "is_eligible", "nonzero",
    "order_key", "recap_as_of", "recaps_equal", "report_json", "select_rows",
]
