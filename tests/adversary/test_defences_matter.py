"""Each attack test fails once the defence it covers is taken away: a test that cannot fail is a defect.

Every test here removes one defence (monkeypatched for this test only, named in ``DEFENCES`` and in the
README's table), runs the attack tests that defence covers, and requires each of them to fail with "the
attack got through" (for tests of tests/server that predate this suite: their own failure). Where the
attack then succeeds end to end, the test goes on and shows what the attacker gained. The defences are
code, not storage, so this runs on SQLite only; the attacks themselves run on both databases.
"""

from __future__ import annotations

import asyncio
import types

import pytest

import crypto.directory
import server.accounts
import server.api
import server.held
import server.hub
import server.sync_ws
import sync.directory
import sync.keyholder
from crypto import BoxKeyPair
from server.authority import Authority
from sync import entitlement
from sync.device import SAFEGUARDING
from sync.keyholder import run_duties
from sync.protocol import b64d
from tests.adversary import test_hostile_admin as admin
from tests.adversary import test_hostile_server as hostile
from tests.adversary import test_named_person as named
from tests.adversary import test_stolen_device as stolen
from tests.adversary._attack import GOT_THROUGH, HostileServer, keys_of, next_version, on, signing_key
from tests.server import test_directory as server_directory
from tests.server import test_sessions as server_sessions
from tests.server import test_sign_in as server_sign_in

pytestmark = [pytest.mark.asyncio, pytest.mark.parametrize("running", ["sqlite"], indirect=True)]


async def got_through(attack) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AssertionError, match=GOT_THROUGH):
        await attack


# --- the defences, each as the patch that removes it ------------------------------------------------


def signs_whatever_the_server_proposes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """sync/directory.py:prepare keeps only the widenings its person approved: make it keep every one (the
    keyholder device as it was before issue 12, re-signing the server's state on its routine refresh)."""
    real = sync.directory.prepare

    def prepare(school_id, current, held, allowed=()):  # type: ignore[no-untyped-def]
        if held is None:
            return real(school_id, current, held, allowed)
        everything = crypto.directory.widenings(held.content, sync.directory.content_from_listing(current))
        return real(school_id, current, held, set(allowed) | everything)

    monkeypatch.setattr(sync.directory, "prepare", prepare)


def role_instead_of_keyholder(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """server/authority.py:Authority.is_keyholder: a safeguarding member by the signed directory holding the
    group key. Replace it with the role the account's row carries (what the server checked before)."""

    async def is_keyholder(self, conn, school_id, user_id, roles):  # type: ignore[no-untyped-def]
        return "safeguarding" in roles

    monkeypatch.setattr(Authority, "is_keyholder", is_keyholder)


def admins_without_a_second_factor(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(server.accounts, "SECOND_FACTOR_ROLES", server.accounts.SECOND_FACTOR_ROLES - {"admin"})


def ids_unchecked_across_schools(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def id_free(conn, **ids):  # type: ignore[no-untyped-def]
        return None

    monkeypatch.setattr(server.api, "id_free", id_free)


def bindings_unchecked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(crypto.directory, "verify_identity_binding", lambda *args: None)


def structure_unchecked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """crypto/directory.py:_check_structure, which holds each group purpose to one key id (and versions to
    1, 2, ... without a gap)."""
    monkeypatch.setattr(crypto.directory, "_check_structure", lambda content, what: None)


def transitions_unchecked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """crypto/directory.py:check_transition, to a no-op: approvals, and what a version keeps, unchecked."""
    monkeypatch.setattr(crypto.directory, "check_transition", lambda before, after: set())


def versions_not_followed(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """crypto/directory.py:verify_directory's step 2 (the next version, chained by hash): the client checks
    each version on its own, as at a first sign-in."""
    real = crypto.directory.verify_directory
    monkeypatch.setattr(sync.directory, "verify_directory", lambda data, school, pin, previous=None:
                        real(data, school, pin, None))


def duties_trust_the_server(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """sync/keyholder.py:run_duties checks each owed grant with entitlement.may_hold over the signed
    directory: let it take the server's word."""
    shim = types.SimpleNamespace(**{n: getattr(entitlement, n) for n in dir(entitlement) if not n.startswith("__")})
    shim.may_hold = lambda view, member, key_id: True
    monkeypatch.setattr(sync.keyholder, "rules", shim)


def regrants_trust_the_server(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """sync/keyholder.py:_regrant seals an entry key again only to a person the concern's fold names
    (sync/reader.py:need_to_know): let it take every current member as named."""
    monkeypatch.setattr(sync.keyholder, "need_to_know", lambda events, directory: {
        b64d(a["id"], "id") for a in directory["accounts"] if not a["left"]})


def frames_not_rechecked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def check_session(self, request_id=None):  # type: ignore[no-untyped-def]
        return True

    monkeypatch.setattr(server.sync_ws.SyncConnection, "check_session", check_session)


def sessions_never_end_over_http(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(server.accounts, "_ended", lambda s: None if s is not None else "signed_out")


def hand_over_any_number_of_times(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def claim(services, school_id, device_id):  # type: ignore[no-untyped-def]
        return True

    monkeypatch.setattr(server.held, "_claim", claim)


def count_after_checking(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """server/accounts.py:Attempt.claim records an attempt before counting; count first and record after
    (check, then act: what let 54 of 60 concurrent wrong proofs be checked)."""
    from sqlalchemy import insert

    from server.errors import ApiError
    from server.models import SignInAttempt

    together, claims = asyncio.Barrier(60), []  # the worst case for the 60 wrong proofs: all count, then all act

    async def claim(cls, engine, school_id, login):  # type: ignore[no-untyped-def]
        async with engine.connect() as conn:
            tried = await server.accounts.recent_failures(conn, school_id, login)
        claims.append(login)
        if len(claims) > 1:  # the first is the invitee's own sign-in, before the attack
            await asyncio.wait_for(together.wait(), 10)
        if tried >= server.accounts.MAX_FAILURES:
            raise ApiError("too_many_attempts", "too many")
        async with engine.begin() as conn:
            row = await conn.execute(insert(SignInAttempt).values(school_id=school_id, login=login,
                                                                  at_ms=server.accounts.now_ms()))
        return cls(engine, row.inserted_primary_key[0])

    monkeypatch.setattr(server.accounts.Attempt, "claim", classmethod(claim))


def sockets_not_closed_when_sessions_end(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def end(self, school_id, **scope):  # type: ignore[no-untyped-def]
        return 0

    monkeypatch.setattr(server.hub.Hub, "end", end)


# --- a hostile admin ---------------------------------------------------------------------------------


async def test_without_prepare_s_filter_an_admin_makes_itself_a_safeguarding_reader(
    school, office, monkeypatch
) -> None:
    signs_whatever_the_server_proposes(monkeypatch)
    await got_through(admin.test_an_admin_adding_safeguarding_to_itself_widens_nothing(school, office))
    await run_duties(school.dsl.device)  # attack 1 to its end: the DSL's device seals the group key to the admin
    await office.device.refresh()
    assert keys_of(office.device, SAFEGUARDING), "the admin should now hold the safeguarding key"


async def test_without_prepare_s_filter_the_dsl_device_re_signs_an_admin_s_requests(
    school, office, monkeypatch
) -> None:
    signs_whatever_the_server_proposes(monkeypatch)
    await got_through(admin.test_an_admin_cannot_get_a_dsl_device_to_re_sign_its_requests(school, office))


async def test_without_prepare_s_filter_an_admin_made_teacher_gets_pupil_keys(school, office, monkeypatch) -> None:
    signs_whatever_the_server_proposes(monkeypatch)
    await got_through(admin.test_an_admin_made_teacher_gets_no_pupil_keys_without_a_keyholder(school, office))


@pytest.mark.parametrize(
    "attack",
    [
        admin.test_an_admin_cannot_publish_a_safeguarding_key_under_a_new_key_id_or_at_version_2_31_minus_1,
        admin.test_an_admin_cannot_grant_a_key_nobody_holds,
        admin.test_a_safeguarding_role_an_admin_just_made_is_not_keyholder_status,
        admin.test_an_admin_cannot_decide_held_envelopes,
        admin.test_an_admin_cannot_add_pupils,
        admin.test_an_admin_cannot_publish_a_directory_version,
    ],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
async def test_with_a_role_check_instead_of_keyholder_status_the_admin_gets_past_the_route(
    school, office, monkeypatch, attack
) -> None:
    role_instead_of_keyholder(monkeypatch)
    await got_through(attack(school, office))


async def test_without_a_second_factor_for_admins_a_password_is_enough(school, office, monkeypatch) -> None:
    admins_without_a_second_factor(monkeypatch)
    await got_through(admin.test_an_admin_signs_in_only_with_a_second_factor(school, office))


async def test_without_ids_unique_across_schools_another_school_takes_our_ids(school, office, monkeypatch) -> None:
    ids_unchecked_across_schools(monkeypatch)
    await got_through(admin.test_chosen_user_ids_cannot_write_into_another_school_s_rows(school, office))


# --- a hostile server --------------------------------------------------------------------------------


async def test_without_identity_bindings_the_dsl_device_goes_on_with_a_swapped_key(school, monkeypatch) -> None:
    bindings_unchecked(monkeypatch)
    await got_through(hostile.test_a_swapped_x25519_identity_key_is_refused_and_never_granted_to(school))


async def test_without_one_key_id_per_group_a_second_safeguarding_key_id_is_read(school, monkeypatch) -> None:
    structure_unchecked(monkeypatch)
    await got_through(hostile.test_a_second_reader_key_id_for_a_group_is_refused_and_writers_keep_the_pinned_one(
        school))


async def test_without_pinning_and_approvals_writers_seal_to_the_server_s_key(school, monkeypatch) -> None:
    """Attack 1 as it was, end to end: with neither the one-key-id rule nor the transition check, a version
    signed with the school key that lists a safeguarding key of the server's at 2^31 - 1 under a new key id
    is accepted, and the teacher's next concern is sealed to it rather than to the DSL's key."""
    structure_unchecked(monkeypatch)
    transitions_unchecked(monkeypatch)
    dsl, teacher = school.dsl.device, school.members["teacher-oak"].device
    held, server_key = teacher.signed_directory, BoxKeyPair.generate()
    content, _ = hostile._new_safeguarding_version(held, server_key.public, key_id=b"\xff" * 16, version=2**31 - 1)
    transport = HostileServer(hostile._serving(next_version(held, signing_key(dsl), content)))
    duped, http = on(teacher, transport, school.running.base)
    await duped.refresh()
    await http.aclose()
    recipients = duped.recipients_for([school.classes["oak"][0]], groups=())
    assert recipients[0][1] == server_key.public


@pytest.mark.parametrize(
    "attack",
    [hostile.test_a_rolled_back_version_is_refused, hostile.test_a_skipped_version_is_refused],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
async def test_without_following_every_version_a_client_goes_back_or_skips(school, monkeypatch, attack) -> None:
    versions_not_followed(monkeypatch)
    await got_through(attack(school))


@pytest.mark.parametrize(
    "attack",
    [hostile.test_a_forged_approval_is_refused, hostile.test_an_approval_that_covers_something_else_is_refused],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
async def test_without_check_transition_a_forged_or_borrowed_approval_is_taken(school, monkeypatch, attack) -> None:
    transitions_unchecked(monkeypatch)
    await got_through(attack(school))


async def test_without_the_device_s_own_entitlement_check_duties_seal_what_the_server_says(
    school, office, monkeypatch
) -> None:
    duties_trust_the_server(monkeypatch)
    await got_through(hostile.test_duties_the_server_invents_are_never_sealed(school, office))


async def test_without_the_fold_check_duties_seal_an_entry_key_to_whom_the_server_says(school, monkeypatch) -> None:
    regrants_trust_the_server(monkeypatch)
    await got_through(named.test_an_entry_grant_duty_the_server_lists_seals_only_to_whom_the_concern_names(school))


# --- a stolen device ---------------------------------------------------------------------------------


async def test_without_the_per_frame_session_check_a_revoked_socket_takes_puts(school, monkeypatch) -> None:
    frames_not_rechecked(monkeypatch)
    await got_through(stolen.test_a_stolen_device_s_open_socket_takes_no_put_once_revoked_elsewhere(school))


async def test_without_ended_sessions_a_stolen_token_still_works_over_http(school, monkeypatch) -> None:
    sessions_never_end_over_http(monkeypatch)
    await got_through(stolen.test_a_stolen_session_token_opens_nothing_over_http_once_it_ended(school))


async def test_without_the_one_hand_over_claim_a_thief_hands_over_again(school, monkeypatch) -> None:
    hand_over_any_number_of_times(monkeypatch)
    await got_through(stolen.test_a_stolen_device_hands_over_once_and_the_thief_gets_no_second_channel(school))


async def test_without_the_atomic_attempt_concurrent_wrong_proofs_pass_the_limit(school, monkeypatch) -> None:
    count_after_checking(monkeypatch)
    with pytest.raises(AssertionError, match="proofs were checked"):
        await server_sign_in.test_sixty_concurrent_wrong_proofs_get_at_most_ten_checked(school, monkeypatch)


async def test_without_closing_sockets_a_signed_out_session_keeps_its_socket(school, monkeypatch) -> None:
    sockets_not_closed_when_sessions_end(monkeypatch)
    with pytest.raises(asyncio.TimeoutError):  # nothing closes it: it waits for the frame it was promised
        await server_sessions.test_signing_out_closes_that_sessions_socket_at_once(school)


async def test_without_the_conditional_update_one_code_signs_in_twice(school, monkeypatch) -> None:
    """server/accounts.py:Accounts.second_factor claims the code's 30-second step with a conditional
    update (``totp_last_step < step``); without that condition every racing sign-in with the code passes."""
    from sqlalchemy import update

    from server.errors import ApiError
    from server.models import Account

    async def second_factor(self, conn, account, code):  # type: ignore[no-untyped-def]
        step = server.accounts._matching_step(account.totp_secret, code or "", account.totp_last_step)
        if step is None:
            raise ApiError("sign_in_failed", "the one-time code is not right")
        await conn.execute(update(Account).where(Account.school_id == account.school_id, Account.id == account.id)
                           .values(totp_last_step=step))

    monkeypatch.setattr(server.accounts.Accounts, "second_factor", second_factor)
    with pytest.raises(AssertionError, match=r"200, 200"):
        await server_sign_in.test_a_code_replayed_by_concurrent_sign_ins_is_accepted_once(school, monkeypatch)


async def test_without_the_server_s_transition_check_it_stores_what_no_client_would_take(school, monkeypatch) -> None:
    """server/api_directory.py:publish_directory runs crypto.directory.check_transition too (the second
    wall): without it, a version signed with the school key and widened by nobody is no longer refused as
    ``unapproved_directory`` (only the rows check still stands)."""
    import server.api_directory

    monkeypatch.setattr(server.api_directory, "check_transition", lambda before, after: set())
    with pytest.raises(AssertionError, match="unapproved_directory"):
        await server_directory.test_the_server_takes_only_the_next_version_signed_with_the_key_on_file(school)


async def test_without_the_server_s_delivery_wall_an_admin_is_sent_concerns_it_still_cannot_open(
    school, office, monkeypatch
) -> None:
    """server/storage.py:SqlStorage.readable_keys (what the server delivers to whom) widened to every key:
    the admin is sent every concern's ciphertext, and the first wall still holds: it opens none of them."""
    from sqlalchemy import select

    from crypto import CryptoError
    from crypto import envelope as env
    from server.models import ReaderKey
    from server.storage import ReadableKeys, SqlStorage

    async def readable_keys(self, school_id, user_id):  # type: ignore[no-untyped-def]
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(ReaderKey.id, ReaderKey.version).where(ReaderKey.school_id == school_id))
            keys = frozenset((bytes(k), int(v)) for k, v in rows)
        return ReadableKeys(user_id, keys, frozenset())

    monkeypatch.setattr(SqlStorage, "readable_keys", readable_keys)
    await got_through(admin.test_an_admin_reads_the_roster_and_no_concern(school, office))
    client = await office.connect(school.running)
    page = await client._request({"type": "pull", "cursor": None, "limit": 500})
    await client.close()
    devices = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in office.device.directory["devices"]}
    assert len(page["items"]) == 2
    for item in page["items"]:
        raw = b64d(item["envelope"], "envelope")
        with pytest.raises(CryptoError):
            env.open(raw, devices[env.parse(raw).header.author_device], office.device.keyring())


async def test_with_a_naming_wall_per_concern_a_person_named_once_is_sent_every_later_version(
    school, monkeypatch
) -> None:
    """server/storage.py:_entry_key_seqs matches an entry key grant by concern and entry key version; match
    by concern alone, and a person named on version 1 is sent the events of version 2 as well."""
    from sqlalchemy import select

    import server.storage
    from server.models import Envelope

    async def by_concern(conn, school_id, entry_keys, low, high):  # type: ignore[no-untyped-def]
        rows = await conn.execute(select(Envelope.seq).where(
            Envelope.school_id == school_id, Envelope.concern_id.in_(sorted({c for c, _ in entry_keys})),
            Envelope.seq > low, Envelope.seq <= high))
        return {int(r[0]) for r in rows}

    monkeypatch.setattr(server.storage, "_entry_key_seqs", by_concern)
    await got_through(named.test_a_person_named_on_one_entry_key_version_is_sent_nothing_of_the_next(school))
