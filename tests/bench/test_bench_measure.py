"""Bench reports: a table replaces what is between its markers and nothing else."""
from __future__ import annotations

from bench.measure import write_section


def test_write_section_keeps_the_prose(tmp_path):
    doc = tmp_path / "doc.md"
    write_section(doc, "t", "first", "Title")
    assert doc.read_text() == "# Title\n\n<!-- t:start -->\nfirst\n<!-- t:end -->\n"
    doc.write_text(doc.read_text().replace("# Title\n", "# Title\n\nprose before\n") + "prose after\n")
    write_section(doc, "t", "second", "Title")
    write_section(doc, "u", "other", "Title")
    assert doc.read_text() == ("# Title\n\nprose before\n\n<!-- t:start -->\nsecond\n<!-- t:end -->\nprose after\n"
                               "\n<!-- u:start -->\nother\n<!-- u:end -->\n")
