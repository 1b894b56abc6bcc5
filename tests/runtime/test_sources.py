"""Input: lines cut from blocks, whatever block boundaries, terminators and blank lines; gzip or not."""
from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from uniqcount.runtime.sources import Input

line = st.text(alphabet="ab{}\" \x00é", max_size=12).map(str.encode)
blank = st.sampled_from([b"", b"  ", b"\t"])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(line | blank, st.sampled_from([b"\n", b"\r\n"]))), st.booleans(),
       st.integers(1, 40), st.booleans(), st.none() | st.integers(0, 20))
def test_lines_whatever_the_blocks(tmp_path_factory, lines, last_terminated, size, gzipped, limit):
    data = b"".join(text + end for text, end in lines)
    if lines and not last_terminated:
        data = data[:-len(lines[-1][1])]
        if not lines[-1][0]:  # an empty last line without its terminator is no line at all
            lines = lines[:-1]
    path = Path(tmp_path_factory.mktemp("in")) / "frames"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    kept = [text for text, _ in lines if text.strip()]
    numbered = [(number, text) for number, (text, _) in enumerate(lines, 1) if text.strip()]
    source = Input(str(path))
    got = [(n, frame) for numbers, batch in source.numbered_batches(size=size, limit=limit)
           for n, frame in zip(numbers, batch, strict=True)]
    source.close()
    assert source.gzipped == gzipped
    assert [frame for _, frame in got] == kept[:limit]
    assert got == numbered[:limit]
    if limit is None:
        assert source.blank_lines == len(lines) - len(kept)
