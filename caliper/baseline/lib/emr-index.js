/*
 * emr_index, PutRecord and GetRecord: the JavaScript twin of
 * chaincode/medfabric_chaincode/contracts/emr_index.py (with what it uses of common.py and
 * access_log.append_log), on the official Node contract API (fabric-contract-api 2.5.8).
 *
 * The same input gives the same state, payload, event and error text as the Python contract:
 *
 *   ("emr", record_id)                               -> the entry, canonical JSON
 *   ("emr~patient", patient, record_id)              -> "\x00"
 *   ("log", timestamp, tx_id, "0000")                -> the access-log "write" entry, canonical JSON
 *   ("log~record", record_id, timestamp, tx_id, "0000") -> "\x00"
 *   event RecordPut {domain, patient, record_id, resource_type, version}
 *
 * Where the contract API answers before the contract runs (a wrong number of arguments, an
 * unknown contract name), its own messages stay: tests/conformance/test_baseline_chaincode.py
 * pins them.
 */

'use strict';

const {Contract} = require('fabric-contract-api');

const {JsonError, parse, canonical, canonicalBytes, byCodePoint} = require('./json');
const {isZonedTime} = require('./isotime');
const {IdentityError, callerOf} = require('./identity');

const CONTRACT_NAME = 'emr_index';
const RECORD_KEY = 'emr';
const PATIENT_INDEX = 'emr~patient';
const LOG_KEY = 'log';
const LOG_RECORD_INDEX = 'log~record';
const RECORD_PUT_EVENT = 'RecordPut';
const INDEX_VALUE = Buffer.from([0]);
const DOMAIN_ATTRIBUTE = 'medfabric.domain';
const ROLE_ATTRIBUTE = 'medfabric.role';
const MAX_GRANTS = 100;
const MAX_LOCATION_LENGTH = 1024;
const RESOURCE_TYPES = [
    'Patient', 'Encounter', 'Observation', 'DiagnosticReport', 'ImagingStudy', 'Condition',
    'MedicationRequest', 'Procedure', 'AllergyIntolerance', 'Immunization', 'DocumentReference',
];

/** A refusal: the message goes back to the client, made one line as the Python router does. */
class TransactionError extends Error {}

// Python's str.split() whitespace, which one_line() collapses.
const PYTHON_WHITESPACE = /[\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

function oneLine(text) {
    return String(text).split(PYTHON_WHITESPACE).filter(Boolean).join(' ');
}

// Field rules: [test, the sentence stated when the value fails] --------------------------------------

const pattern = (regex) => (value) => typeof value === 'string' && regex.test(value);
const oneOf = (values) => (value) => typeof value === 'string' && values.includes(value);
const isCount = (value) => typeof value === 'bigint' && value >= 0n;
const isLocation = (value) => typeof value === 'string' && Array.from(value).length <= MAX_LOCATION_LENGTH
    && /^[A-Za-z][A-Za-z0-9+.-]*:[!-~]+$/.test(value);

const ID_RULE = [pattern(/^[A-Za-z0-9._:-]{1,128}$/), 'must be 1-128 characters of A-Z a-z 0-9 . _ : -'];
const SHA256_RULE = [pattern(/^[0-9a-f]{64}$/), 'must be 64 lowercase hex characters'];

// In the order the Python contract checks them.
const ENTRY_RULES = new Map([
    ['record_id', ID_RULE],
    ['patient', [ID_RULE[0], 'must be a pseudonym of 1-128 characters of A-Z a-z 0-9 . _ : -']],
    ['domain', [pattern(/^[a-z0-9-]{1,63}$/), 'must be 1-63 characters of a-z 0-9 -']],
    ['resource_type', [oneOf(RESOURCE_TYPES), `must be one of ${[...RESOURCE_TYPES].sort().join(', ')}`]],
    ['ciphertext_sha256', SHA256_RULE],
    ['plaintext_sha256', SHA256_RULE],
    ['size', [isCount, 'must be an integer >= 0']],
    ['location', [isLocation,
        `must be an absolute URI of at most ${MAX_LOCATION_LENGTH} printable ASCII characters`]],
]);
const GRANT_RULES = new Map([
    ['grantee', [pattern(/^[A-Za-z0-9._:@-]{1,128}$/), 'must be 1-128 characters of A-Z a-z 0-9 . _ : @ -']],
    ['expires', [isZonedTime, 'must be an ISO-8601 date-time with a time zone']],
]);

function invalidField(what, name, rule) {
    throw new TransactionError(`invalid ${what}: field '${name}' ${rule}`);
}

/** Every field known and valid; fields in `optional` may be absent (and pass unchecked without a rule). */
function checkFields(document, rules, what, optional = [], prefix = '') {
    const unknown = [...document.keys()].filter((name) => !rules.has(name) && !optional.includes(name));
    if (unknown.length > 0) {
        unknown.sort(byCodePoint);
        const names = unknown.map((name) => `'${prefix}${name}'`).join(', ');
        throw new TransactionError(`invalid ${what}: unknown field${unknown.length > 1 ? 's' : ''} ${names}`);
    }
    for (const [name, [isValid, rule]] of rules) {
        if (!document.has(name)) {
            if (optional.includes(name)) {
                continue;
            }
            invalidField(what, prefix + name, 'is required');
        }
        if (!isValid(document.get(name))) {
            invalidField(what, prefix + name, rule);
        }
    }
}

const isObject = (value) => value instanceof Map;

function parseEntry(text) {
    let document;
    try {
        document = parse(text);
    } catch (error) {
        if (error instanceof JsonError) {
            throw new TransactionError(`invalid record: not valid JSON: ${error.message}`);
        }
        throw error;
    }
    if (!isObject(document)) {
        throw new TransactionError('invalid record: expected a JSON object');
    }
    checkFields(document, ENTRY_RULES, 'record', ['grants']);
    const entry = new Map([...ENTRY_RULES.keys()].map((name) => [name, document.get(name)]));
    const grants = document.has('grants') ? document.get('grants') : [];
    if (!Array.isArray(grants) || grants.length > MAX_GRANTS) {
        invalidField('record', 'grants', `must be a list of at most ${MAX_GRANTS} grants`);
    }
    grants.forEach((grant, index) => {
        if (!isObject(grant)) {
            invalidField('record', `grants[${index}]`, 'must be an object with grantee and expires');
        }
        checkFields(grant, GRANT_RULES, 'record', [], `grants[${index}].`);
    });
    entry.set('grants', grants.map((grant) => ({grantee: grant.get('grantee'), expires: grant.get('expires')})));
    return entry;
}

function checkArgument(name, value, [isValid, rule]) {
    if (!isValid(value)) {
        throw new TransactionError(`invalid argument: '${name}' ${rule}`);
    }
}

/** The argument's bytes as strict UTF-8, as the Python runtime decodes a str parameter. */
function textArgument(stub, index, name) {
    try {
        return new TextDecoder('utf-8', {fatal: true, ignoreBOM: true}).decode(stub.getBufferArgs()[index]);
    } catch (error) {
        throw new TransactionError(`invalid value for '${name}': not UTF-8 text`);
    }
}

/** The transaction's time as the contracts write it: ISO-8601 UTC, milliseconds (truncated), "Z". */
function isoMillis(stub) {
    const {seconds, nanos} = stub.getTxTimestamp();
    const whole = typeof seconds === 'number' ? seconds : seconds.toNumber();
    return new Date(whole * 1000 + Math.floor(nanos / 1e6)).toISOString();
}

const DOMAIN_MSPS_VARIABLE = 'MEDFABRIC_DOMAIN_MSPS';

/** The consortium's domain -> MSP binding from the environment, as contracts/common.py domain_msps reads it. */
function domainMsps() {
    const setting = process.env[DOMAIN_MSPS_VARIABLE] || '';
    if (!setting) {
        throw new TransactionError(`this chaincode server cannot check domains: no domain -> MSP binding: ${DOMAIN_MSPS_VARIABLE} is not set`);
    }
    try {
        return JSON.parse(setting);
    } catch (error) {
        throw new TransactionError(`this chaincode server cannot check domains: ${DOMAIN_MSPS_VARIABLE} is not JSON`);
    }
}

/** The caller must be of the MSP bound to the domain and its certificate must say medfabric.domain = domain
 * (contracts/common.py require_domain). */
function requireDomain(caller, domain, doing) {
    const binding = domainMsps();
    const owner = Object.prototype.hasOwnProperty.call(binding, domain) ? binding[domain] : undefined;
    if (owner === undefined) {
        const known = Object.keys(binding).sort(byCodePoint).join(', ');
        throw new TransactionError(`${domain} is no domain of this consortium (known: ${known})`);
    }
    if (caller.mspId !== owner) {
        throw new TransactionError(`only an identity of domain ${domain} (${owner}) may ${doing}: the caller is of ${caller.mspId}`);
    }
    const claimed = caller.attribute(DOMAIN_ATTRIBUTE);
    if (claimed !== domain) {
        const has = claimed !== null && claimed !== undefined ? `has ${DOMAIN_ATTRIBUTE} ${claimed}` : `has no ${DOMAIN_ATTRIBUTE}`;
        throw new TransactionError(`only an identity of domain ${domain} may ${doing}: the caller's certificate ${has}`);
    }
}

class EmrIndexContract extends Contract {
    constructor() {
        super(CONTRACT_NAME);
    }

    /** Index a new record of the caller's domain, owned by the caller's MSP; returns the entry as stored. */
    async PutRecord(ctx, recordJson) {
        return this._answer(async () => {
            const stub = ctx.stub;
            const entry = parseEntry(textArgument(stub, 1, 'record_json'));
            requireDomain(callerOf(stub), entry.get('domain'), 'index its records');
            const recordId = entry.get('record_id');
            const key = stub.createCompositeKey(RECORD_KEY, [recordId]);
            const existing = await stub.getState(key);
            if (existing && existing.length > 0) {
                throw new TransactionError(`record ${recordId} already exists`);
            }
            const caller = callerOf(stub);
            const now = isoMillis(stub);
            const record = new Map([...entry, ['owner_msp', caller.mspId], ['created', now], ['updated', now],
                ['version', 1], ['erased', false], ['erased_at', null]]);
            const stored = canonical(record);
            await stub.putState(key, Buffer.from(stored, 'utf8'));
            await stub.putState(stub.createCompositeKey(PATIENT_INDEX, [entry.get('patient'), recordId]), INDEX_VALUE);
            await this._appendLog(stub, caller, now, recordId);
            const event = {};
            for (const name of ['record_id', 'patient', 'domain', 'resource_type', 'version']) {
                event[name] = record.get(name);
            }
            stub.setEvent(RECORD_PUT_EVENT, canonicalBytes(event));
            return stored;
        });
    }

    /** The entry of a record (an erased record's tombstone), canonical JSON. */
    async GetRecord(ctx, recordId) {
        return this._answer(async () => {
            const stub = ctx.stub;
            const id = textArgument(stub, 1, 'record_id');
            checkArgument('record_id', id, ID_RULE);
            const data = await stub.getState(stub.createCompositeKey(RECORD_KEY, [id]));
            if (!data || data.length === 0) {
                throw new TransactionError(`record ${id} not found`);
            }
            // Python reads the entry into its dataclass and writes it again: the same bytes for a
            // canonical entry, which is all PutRecord and EraseRecord store.
            return canonical(parse(Buffer.from(data).toString('utf8')));
        });
    }

    /** A function this contract does not have: the Python router's message. */
    async unknownTransaction(ctx) {
        const name = ctx.stub.getFunctionAndParameters().fcn.split(':').pop();
        const message = name ? `contract '${CONTRACT_NAME}' has no transaction '${name}'` : 'no transaction function named';
        throw new Error(oneLine(message));
    }

    /** access_log.append_log(ctx, "write", "success", record_id): the first entry of this transaction. */
    async _appendLog(stub, caller, timestamp, recordId) {
        const txId = stub.getTxID();
        const entry = {
            log_id: txId,
            record_id: recordId,
            actor_id: caller.id,
            actor_msp: caller.mspId,
            actor_role: caller.attribute(ROLE_ATTRIBUTE),
            action: 'write',
            outcome: 'success',
            reason: null,
            from_domain: caller.attribute(DOMAIN_ATTRIBUTE),
            flagged: false,
            channel: stub.getChannelID(),
            tx_id: txId,
            timestamp,
            requester_msp: null,
            requester_id: null,
            decision_tx: null,
        };
        const suffix = [timestamp, txId, '0000'];
        await stub.putState(stub.createCompositeKey(LOG_KEY, suffix), canonicalBytes(entry));
        await stub.putState(stub.createCompositeKey(LOG_RECORD_INDEX, [recordId, ...suffix]), INDEX_VALUE);
    }

    /** Runs a transaction; a refusal becomes an error with a one-line message (status 500). */
    async _answer(transaction) {
        try {
            return await transaction();
        } catch (error) {
            if (error instanceof TransactionError || error instanceof IdentityError) {
                throw new Error(oneLine(error.message) || 'transaction failed');
            }
            throw error;
        }
    }
}

module.exports = {EmrIndexContract, parseEntry, oneLine};
