"""The terminal summary of a study: headline numbers and the count of flagged figures."""

from rich.console import Console

from tunescope.result import Result, flags
from tunescope.study.summary import summary_table


def _text(table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_summary_cells_show_headlines_and_flag_counts():
    flagged = Result("prediction_consistency", summary={
        "macro_consistency": 0.5, "macro_accuracy": 0.25,
        "flags": ["C1 P30: one candidate object", "C1 P36: only 3 candidate objects"]})
    clean = Result("prediction_consistency", summary={"macro_consistency": 0.75,
                                                      "macro_accuracy": 0.5})
    assert flags(flagged) == flagged.summary["flags"] and flags(clean) == []
    text = _text(summary_table(["base", "tuned"], ["prediction_consistency"],
                               {"prediction_consistency": {"base": flagged, "tuned": clean}}, []))
    assert "consistency 0.5" in text and "consistency 0.75" in text
    assert text.count("flag(s)") == 1 and "2 flag(s)" in text
