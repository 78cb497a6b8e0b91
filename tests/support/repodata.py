"""Real createrepo_c repositories, damaged in ways their checksums do not catch."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path


def rewritten(repo: Path, dest: Path, edit: Callable[[str, bytes], bytes]) -> Path:
    """A copy of ``repo`` whose primary and filelists documents ``edit(kind, xml) -> bytes`` rewrote (stored as
    it returns them), with repomd.xml's checksums redone: damage that the checksums do not catch."""
    import gzip
    import hashlib

    import createrepo_c as cr

    shutil.copytree(repo, dest)
    repodata = dest / "repodata"
    repomd = cr.Repomd(str(repodata / "repomd.xml"))
    fresh = cr.Repomd()
    for record in repomd.records:
        if record.type not in ("primary", "filelists"):
            continue
        path = dest / record.location_href
        path.write_bytes(edit(record.type, gzip.decompress(path.read_bytes())))
        new = cr.RepomdRecord(record.type, str(path))
        new.location_href = record.location_href
        new.checksum_type, new.checksum = "sha256", hashlib.sha256(path.read_bytes()).hexdigest()
        fresh.set_record(new)
    (repodata / "repomd.xml").write_text(fresh.xml_dump())
    return dest
