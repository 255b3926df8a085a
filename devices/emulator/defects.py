"""Seeded firmware defects: named ways an emulator can be made to misbehave on purpose.

Each scenario must pass on the correct emulator and fail on the defects it exists to catch;
that is how we know the suite would catch a real regression (DESIGN.md, "Seeded defects").
Enable them with ``--kkt "emulator:kf?defects=a,b"``, ``kkt-hil emulate --defect NAME`` or the
control channel ``{"op": "defects", "enable": [...]}``.
"""

from __future__ import annotations

from collections.abc import Iterable

DEFECTS: dict[str, str] = {
    "ignore_24h_rule": "the shift never expires: receipts are accepted after 24 h",
    "lose_pending_print_on_power_cycle": "a printout pending after the ФН commit is forgotten at power-up",
    "reprint_creates_new_document": "finishing an interrupted receipt printout commits a second fiscal document",
    "accept_unregistered_tax_system": "a receipt with a tax system not in the registration is accepted",
    "report_undelivered_as_sent": "documents count as delivered to the OFD although the OFD never acknowledged them",
    "return_adds_to_shift_total": "a return receipt is counted in the shift's sales totals instead of its returns",
    "shift_counters_not_reset": "opening a shift does not reset the receipt totals: they continue from the last shift",
    "no_fn_30_day_warning": 'the ФН warning "key resource runs out within 30 days" is never raised',
    "x_report_makes_document": "an X report is also committed to the ФН as a report on the current state (form 21)",
    "queue_counts_receipts_only": "the reported OFD queue (count, first unsent FD) counts receipts only, not reports",
    "shift_number_skips": "a new shift gets the previous shift's number plus 2",
    # fisGo deferred re-registration (devices/dreamkas/fisgo.py)
    "compare_dates_as_text": "the scheduled date is compared as dd.mm.yyyy text, not chronologically",
    "use_utc_date": "the due check uses the UTC date instead of the device's local date",
    "reregister_inside_open_shift": "a due task is applied as soon as it is seen, even inside an open shift",
    "skip_due_task_on_open": "the shift opens without applying a due task",
    "retry_burns_registration": (
        "a print fault after the re-registration is taken for a failure: the retry burns a second registration"
    ),
    "compare_firmware_as_text": 'the firmware gate compares versions as text ("2.100.0" < "2.26.0")',
    "swap_task_day_month": "the scheduled date is read with day and month swapped when the day is 12 or less",
    "failed_task_not_retried": "a re-registration that failed before the ФН commit is never retried",
    "failure_not_reported": "a failed re-registration is not reported to the Кабинет",
    "implicit_open_skips_task": "a receipt opening the shift implicitly skips the due-task check",
}


def check_defects(names: Iterable[str]) -> list[str]:
    """Validate defect names; raise ValueError naming the unknown ones and the known list."""
    result = [n.strip() for n in names if n and n.strip()]
    unknown = [n for n in result if n not in DEFECTS]
    if unknown:
        raise ValueError(f"unknown defect(s) {', '.join(unknown)} (known: {', '.join(sorted(DEFECTS))})")
    return result
