"""An interrupted save (process killed mid-write) must leave the previous index loadable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mmrank.index import VectorIndex

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import mmrank
    from mmrank.index import store

    target, phase = sys.argv[1], sys.argv[2]
    ix = mmrank.vector_index("exact", model_id="v1")
    ix.add(np.eye(4, dtype=np.float32), ["a", "b", "c", "d"])
    ix.save(target)  # version 1, complete

    ix2 = mmrank.vector_index("exact", model_id="v2")
    ix2.add(np.eye(4, dtype=np.float32)[::-1].copy(), ["w", "x", "y", "z"])
    if phase == "before-manifest":
        real = os.replace
        def dying_replace(src, dst):
            if str(dst).endswith("manifest.json"):
                os._exit(9)  # killed after the data files, before the manifest is published
            return real(src, dst)
        os.replace = dying_replace
    elif phase == "mid-data":
        real_save = np.save
        def dying_save(f, arr, allow_pickle=False):
            f.write(b"\\x93NUMPY partial")
            f.flush()
            os._exit(9)  # killed half-way through writing the vectors
        np.save = dying_save
    ix2.save(target)
    """
)


@pytest.mark.parametrize("phase", ["before-manifest", "mid-data"])
def test_killed_save_leaves_previous_index(tmp_path, phase):
    target = tmp_path / "ix"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(target), phase], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    ix = VectorIndex.load(target)  # checksums verified
    assert ix.model_id == "v1" and ix.ids == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(ix.vectors, np.eye(4, dtype=np.float32))
    # the next successful save cleans the debris of the killed one
    ix.save(target)
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")]
    assert len([p for p in target.iterdir() if p.suffix == ".npy"]) == 1
