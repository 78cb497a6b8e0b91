"""The repository pre-filter and XML markup that holds no data: ``<!-- </package> -->`` and ``<?pi ?>``
inside an element (valid XML, read by createrepo_c and dnf as ever) must not cut the element, wherever the
chunks of the stream end; CDATA (which createrepo_c never writes and which would hide a file name from the
byte search) is refused. Every split point of a small document is tried."""

from __future__ import annotations

import pytest

from rpm_bpf.sources.repodata.prefilter import named, snippets
from rpm_bpf.sources.repodata.transport import RepoError

DOC = (
    b'<metadata><package type="rpm"><name>quiet</name><x/></package>'
    b'<package type="rpm"><name>other-tool</name><!-- </package> <package  --><?pi </package> ?>'
    b'<rpm:provides><!-- </package> --><rpm:entry name="bpf(shared.o)"/></rpm:provides></package>'
    b'<package type="rpm"><name>last</name></package></metadata>'
)
WANTED = DOC[DOC.index(b'<package type="rpm"><name>other-tool') : DOC.index(b'<package type="rpm"><name>last')]


def _splits(doc: bytes):
    for one in range(1, len(doc)):
        yield [doc[:one], doc[one:]]
    yield [doc[i : i + 1] for i in range(len(doc))]  # a byte at a time


@pytest.mark.parametrize("how", ["provide", "name"])
def test_markup_inside_an_element_does_not_cut_it(how):
    expected_len = len(WANTED)
    for chunks in _splits(DOC):
        if how == "provide":
            got = list(snippets(chunks, (b'name="bpf(',)))
        else:  # a hit before the comment: the element must still end at its own </package>
            got = list(snippets(chunks, (), named({b"other-tool"})))
        assert len(got) == 1 and len(got[0]) == expected_len, (chunks[0][-20:], got)
        assert got[0].startswith(b'<package type="rpm"><name>other-tool') and got[0].endswith(b"</package>")
        assert b"<!--" not in got[0] and b'name="bpf(shared.o)"' in got[0]


def test_cdata_is_refused():
    doc = b'<metadata><package type="rpm"><file><![CDATA[/usr/lib64/bpf/x.o]]></file></package></metadata>'
    for chunks in _splits(doc):
        with pytest.raises(RepoError, match="CDATA"):
            list(snippets(chunks, (b">/usr/lib64/bpf/",)))


@pytest.mark.parametrize("unit", [b"<!x", b"<??>", b"<!-- -->"])
def test_a_stream_made_of_markup_is_refused_quickly(unit):
    """Each comment or declaration costs a step: a crafted stream of millions is refused, never crawled
    (and no search rescans what another covered: before, "<!x" soup took seconds for 10,000 of them)."""
    import time

    from rpm_bpf.sources.repodata.prefilter import MAX_MARKUP

    soup = unit * (4 * MAX_MARKUP)
    chunks = [soup[i : i + (1 << 16)] for i in range(0, len(soup), 1 << 16)]
    started = time.monotonic()
    with pytest.raises(RepoError, match=f"more than {MAX_MARKUP} comments"):
        list(snippets(chunks, (b"bpf",)))
    assert time.monotonic() - started < 1
