"""Pushes of a large group commit are split into frames within the protocol's limits."""

from __future__ import annotations


def test_a_large_group_commit_is_pushed_in_frames_within_the_limits() -> None:
    from server.storage import StoredItem
    from server.sync_ws import _chunks
    from sync.protocol import LIMITS

    items = [StoredItem(seq, 0, bytes(1400)) for seq in range(1, 4101)]  # a 4,100-envelope group commit
    chunks = _chunks(items)
    assert [i for c in chunks for i in c] == items
    assert all(len(c) <= LIMITS["max_pull_limit"] for c in chunks)
    assert all(sum(len(i.body) * 4 // 3 + 64 for i in c) <= LIMITS["max_page_bytes"] for c in chunks)
    assert _chunks([]) == []
