"""bench.bit_flips: with the guard, the flipped frames alone are dead-lettered and every minute of
the others is exact; without it, one flip years ahead loses most of the stream."""
from __future__ import annotations

import gzip

from bench import bit_flips
from tests.helpers import ORDERED, needs_samples, truth_minutes


@needs_samples
def test_the_guard_dead_letters_the_flips_alone(capsys):
    assert bit_flips.main([str(ORDERED), "--flips", "3"]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:]]
    frames = len(gzip.decompress(ORDERED.read_bytes()).splitlines())
    minutes = len(truth_minutes(ORDERED))
    guarded, unguarded = rows
    assert guarded[1:] == ["600", guarded[2], f"{minutes} of {minutes}", f"{frames - 3:,} of {frames:,} |"]
    assert guarded[2].startswith("3 (")
    assert int(unguarded[4].split()[0].replace(",", "")) < frames // 2
