"""rnnuniv.io: atomic writes."""

from __future__ import annotations

import os
import stat

from rnnuniv import io


def test_atomic_write_has_the_mode_a_plain_open_gives(tmp_path):
    """mkstemp's 0600 must not leak into results: a shared cluster directory needs group read."""
    old = os.umask(0o022)
    try:
        io.write_json(tmp_path / "a.json", {"x": 1})
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.json").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == 0o644
    assert io.read_json(tmp_path / "a.json") == {"x": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".a.json")]
