"""Crypto benchmarks: ``python -m bench.crypto``.

Envelopes carry a 1 KiB body to 3 recipients (a group key, a pupil key, a named person); opening
verifies the signature, unwraps, checks the key commitment and decrypts. Argon2id runs at the account
floor (3 passes, 64 MiB). One core: nothing here is parallel.
"""

from __future__ import annotations

import os
import time

from bench._measure import per_second, report
from crypto import BoxKeyPair, GrantInfo, KdfParams, SecretKey, SigningKey, derive_account, make_grant, open_grant
from crypto import envelope as env


def main() -> None:
    device, device_id = SigningKey.generate(), os.urandom(16)
    kinds = [env.RECIPIENT_READER_KEY, env.RECIPIENT_READER_KEY, env.RECIPIENT_PERSON]
    readers = [(env.Recipient(k, os.urandom(16), 1), BoxKeyPair.generate()) for k in kinds]
    entry_key, body = SecretKey.generate(), os.urandom(1024)

    def seal() -> bytes:
        return env.seal(
            kind=env.KIND_CONCERN_EVENT, school_id=os.urandom(16), envelope_id=os.urandom(16),
            concern_id=os.urandom(16), author_device=device, author_device_id=device_id, counter=1,
            prev_hash=bytes(32), device_time_ms=int(time.time() * 1000), entry_key=entry_key,
            entry_key_version=1, pupil_ids=[os.urandom(16)],
            recipients=[(r, k.public) for r, k in readers], content=body,
        )

    sealed = seal()
    r, k = readers[0]
    keys = {(r.kind, r.id, r.version): k}
    report("envelope_seal_per_s", per_second(seal), "per_s")
    report("envelope_open_per_s", per_second(lambda: env.open(sealed, device.public, keys)), "per_s")
    report("envelope_verify_per_s", per_second(lambda: env.verify(sealed, device.public)), "per_s")

    member, reader, granter = BoxKeyPair.generate(), BoxKeyPair.generate(), SigningKey.generate()
    info = GrantInfo(os.urandom(16), os.urandom(16), 1, os.urandom(16), os.urandom(16), 1)
    grant = make_grant(info, reader, member.public, granter)
    report(
        "grant_open_per_s",
        per_second(lambda: open_grant(grant, member, info.school_id, info.member_id, granter.public, reader.public)),
        "per_s",
    )

    params = KdfParams.new()
    runs, start = 5, time.perf_counter()
    for _ in range(runs):
        derive_account("a fictional passphrase for timing", params)
    report("argon2id_ms", (time.perf_counter() - start) * 1000 / runs, "ms")


if __name__ == "__main__":
    main()
