// The shapes the Casebook (./casebook.js) gives and keeps, as JSDoc types only: what the review screens read
// and what is sealed at rest. Nothing here runs.

/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../sync/device.js').Device} Device */
/** @typedef {import('../sync/outbox.js').Outbox} Outbox */

/**
 * What a Casebook needs from the unlocked person: people.js's `Session` has all of it.
 * @typedef {object} CasebookSession
 * @property {LocalStore} store
 * @property {Device} device signed in or unlocked: ids, identity keys, reader keys, directory, roles
 * @property {Outbox} outbox where triage events are queued
 * @property {Uint8Array} localKey
 * @property {{id: string, name: string, className: string}[]} pupils the roster this person may read
 */

/**
 * One item of a pull page or a push (docs/PROTOCOL.md 9.4): `envelope` is base64url, as on the wire.
 * @typedef {{seq: number, server_time_ms: number, envelope: string}} PulledItem
 */

/**
 * A pupil linked to a concern, with names from the roster (empty strings when the roster lacks them).
 * @typedef {object} LinkedPupil
 * @property {string} id hex
 * @property {string} role the role (the first, sorted, when concurrent edits disagree)
 * @property {string[]} roles every role currently held (more than one while in conflict)
 * @property {string} name
 * @property {string} classLabel
 */

/**
 * One row of the inbox.
 * @typedef {object} Summary
 * @property {string} id concern id, hex
 * @property {string} kind the record's kind (first head when in conflict)
 * @property {string} category
 * @property {string} categoryLabel
 * @property {string} status open, awaiting, closed or reopened
 * @property {boolean} restricted
 * @property {boolean} alert flagged `urgent` in the record (alert-flagged rows come first)
 * @property {string} excerpt the first ~160 characters of what was observed
 * @property {string} occurredAt the record's `occurred_at`
 * @property {LinkedPupil[]} pupils
 * @property {string[]} classIds hex ids of the classes of the linked pupils
 * @property {number} writtenMs device time of the `created` event (0 if the created event is not held)
 * @property {number} receivedMs server time the `created` event was received
 * @property {number} updatedMs server time of the newest event
 * @property {string | null} assignee user id, hex
 * @property {string} assigneeName
 * @property {boolean} unread
 * @property {boolean} conflicted some field has concurrent values
 * @property {number} overdueActions open actions whose due date is before today
 * @property {boolean} retracted the concern was withdrawn
 * @property {string} authorName who wrote the `created` event
 */

/**
 * @typedef {object} InboxFilter
 * @property {string} [status]
 * @property {string} [category]
 * @property {string} [classId] hex
 * @property {string} [pupilId] hex
 * @property {string} [kind]
 * @property {number} [from] ms, compared with writtenMs (inclusive)
 * @property {number} [to] ms, compared with writtenMs (exclusive)
 * @property {boolean} [unread]
 * @property {boolean} [assignedToMe]
 */

/**
 * One entry of a concern's history.
 * @typedef {object} HistoryEntry
 * @property {string} eventId
 * @property {string} type event type (events.js TYPES)
 * @property {string} author user id, hex
 * @property {string} authorName
 * @property {string[]} authorRoles
 * @property {number} deviceTimeMs when it was written on the device
 * @property {number | null} receivedMs when the server received it (null: not yet sent, still in the outbox)
 * @property {string} text a one-line description for people ("Status set to closed")
 * @property {Record<string, any>} body the event's own fields
 * @property {string[]} flags the fold's flags (conflict, not_authorised, ...)
 */

/**
 * A field with concurrent values, each shown side by side.
 * @typedef {{field: string, versions: {eventId: string, value: any, author: string, authorName: string,
 *   deviceTimeMs: number}[]}} Conflict
 */

/**
 * @typedef {object} Action
 * @property {string} id the `action_added` event id
 * @property {string} text
 * @property {string} owner user id, hex
 * @property {string} ownerName
 * @property {string | null} due YYYY-MM-DD
 * @property {boolean} done
 * @property {boolean} overdue not done and due before today
 * @property {boolean} retracted
 */

/**
 * Everything about one concern.
 * @typedef {object} ConcernView
 * @property {Summary} summary
 * @property {Record<string, any>} fields every register's current value (first head); see `conflicts`
 * @property {Record<string, any>} record the record's fields (kind, category, occurred_at, location, observed,
 *   opinion, child_words, present, body_map, immediate_action, decision, outcome, need_to_know, sharing, urgent)
 * @property {{pupil: string, side: string, x: number, y: number, type: string, region?: string,
 *   size_mm?: number, colour?: string, note?: string}[]} bodyMap
 * @property {HistoryEntry[]} history oldest first
 * @property {Conflict[]} conflicts
 * @property {Action[]} actions
 * @property {{id: string, text: string, author: string, authorName: string, retracted: boolean}[]} comments
 * @property {{id: string, name: string}[]} needToKnow named staff
 * @property {Record<string, any> | null} sharing the sharing decision {shared, with, what, lawful_basis, reason}
 * @property {Record<string, any> | null} decision {decision, rationale}
 * @property {boolean} canTriage this person holds the safeguarding role
 * @property {number} entryKeyVersion
 * @property {string[]} missingParents events named but not held (the state is provisional)
 */

/**
 * One entry of a pupil's chronology.
 * @typedef {object} ChronologyEntry
 * @property {string} id concern id
 * @property {string} kind
 * @property {string} category
 * @property {string} categoryLabel
 * @property {string} role the pupil's role in it
 * @property {string} occurredAt the record's occurred_at (what the chronology is sorted by)
 * @property {number} writtenMs
 * @property {number} receivedMs
 * @property {string} status
 * @property {boolean} restricted
 * @property {string} authorName
 * @property {string} observed the full narrative
 * @property {string} outcome
 * @property {{text: string, ownerName: string, due: string | null, done: boolean}[]} actions
 */

/**
 * @typedef {object} Chronology
 * @property {{id: string, name: string, classLabel: string}} pupil
 * @property {ChronologyEntry[]} entries oldest first
 */

/** @typedef {{id: string, score: number, summary: Summary, matches: string[]}} SearchHit */

/**
 * One event as the sealed per-concern record keeps it.
 * @typedef {{id: string, device: string, deviceTimeMs: number, hlc: [number, number], author: string,
 *   parents: string[], type: string, body: Record<string, any>, content: string, receivedMs: number | null,
 *   seq: number | null}} StoredEvent
 */
/**
 * The sealed record of one concern: its events, the entry keys it opened with (base64url, by version) and
 * what each version's envelopes named (recipients and pupils), so this device can write follow-ups offline.
 * @typedef {{id: string, events: Record<string, StoredEvent>, keys: Record<string, string>,
 *   recipients: Record<string, {kind: number, id: string, version: number}[]>,
 *   pupilIds: Record<string, string[]>}} ConcernBlob
 */

/**
 * What this person has read (per concern: the server time read up to), audit entries not yet sent, where the
 * audit read-back stopped, pulled items held back because this device lacked a key or the author device's
 * entry in the directory at the time (tried again when the directory or grants change), the keys its pulls
 * have covered from the beginning (./grants.js names), the entry key grants addressed to this person (as the
 * server sent them) and those this device made and has not sent yet (docs/PROTOCOL.md 5.1, 9.5, 12.1).
 * @typedef {{read: Record<string, number>, pending: {action: string, target: string}[], auditAfter: number,
 *   held?: PulledItem[], covered?: string[], entryGrants?: string[], grantsToSend?: string[]}} ReviewState
 */

export {};
