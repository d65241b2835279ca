/*
 * A probe contract for the official Node chaincode shim (fabric-shim / fabric-contract-api 2.5.8).
 *
 * It mirrors tests/unit/chaincode/probe_contract.py: the same transaction names, arguments and,
 * as far as the Node contract API allows, the same answers, so that
 * tests/conformance/test_official_chaincode_shim.py can send the same invocations through the
 * same FakePeer to this chaincode and to our runtime, and compare.
 *
 * Plain JavaScript: the contract API types every parameter as a string and its JSON serializer
 * sends a returned string as it is, anything else as JSON. It cannot answer raw bytes, so the
 * transactions that answer bytes in Python answer the bytes decoded as UTF-8 here (the same
 * payload for text); GetBase64 (not in the Python probe) reads binary values.
 * Not mirrored: Store and Scale (typed conversion, which needs TypeScript metadata in Node).
 *
 * Started by the test as a chaincode server:
 *   fabric-chaincode-node server --chaincode-address 127.0.0.1:<port> --chaincode-id <package id>
 * (package.json "main" points here; the shim loads `contracts` from it).
 */

'use strict';

const {Contract} = require('fabric-contract-api');

const utf8 = (bytes) => Buffer.from(bytes || []).toString('utf8');

/** Python's datetime.isoformat() of a UTC protobuf Timestamp (microseconds, "+00:00"). */
function isoformat(seconds, nanos) {
    const whole = typeof seconds === 'number' ? seconds : seconds.toNumber();
    const base = new Date(whole * 1000).toISOString().slice(0, 19);
    const micros = Math.floor(nanos / 1000);
    return micros ? `${base}.${String(micros).padStart(6, '0')}+00:00` : `${base}+00:00`;
}

/**
 * Reads an iterator to its end, then closes it (QUERY_STATE_CLOSE), whatever happens.
 * Awaiting getPrivateDataByRange gives {iterator} where the other queries give the iterator itself.
 */
async function drain(result, convert) {
    const iterator = result.iterator ? result.iterator : result;
    const out = [];
    try {
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
            out.push(convert(next.value));
        }
    } finally {
        await iterator.close();
    }
    return out;
}

const entry = (kv) => `${kv.key}=${utf8(kv.value)}`;

async function page(result) {
    const entries = await drain(result.iterator, entry);
    return {entries, bookmark: result.metadata.bookmark, count: result.metadata.fetchedRecordsCount};
}

class ProbeContract extends Contract {
    constructor() {
        super('probe');
    }

    /** The value is stored as the raw argument bytes (the contract API decodes arguments as UTF-8). */
    async Put(ctx, key, value) {
        await ctx.stub.putState(key, ctx.stub.getBufferArgs()[2]);
    }

    async Get(ctx, key) {
        return utf8(await ctx.stub.getState(key));
    }

    async GetBase64(ctx, key) {
        return Buffer.from(await ctx.stub.getState(key)).toString('base64');
    }

    async Delete(ctx, key) {
        await ctx.stub.deleteState(key);
    }

    async Range(ctx, start, end) {
        return drain(await ctx.stub.getStateByRange(start, end), entry);
    }

    /** Stops after the first entry: the iterator is closed before it is exhausted. */
    async RangeFirst(ctx, start, end) {
        const iterator = await ctx.stub.getStateByRange(start, end);
        try {
            return (await iterator.next()).value.key;
        } finally {
            await iterator.close();
        }
    }

    async RangePage(ctx, start, end, pageSize, bookmark) {
        return page(await ctx.stub.getStateByRangeWithPagination(start, end, Number(pageSize), bookmark));
    }

    async PutComposite(ctx, objectType, attributes, value) {
        const key = ctx.stub.createCompositeKey(objectType, JSON.parse(attributes));
        await ctx.stub.putState(key, Buffer.from(value));
        return key;
    }

    async Partial(ctx, objectType, attributes) {
        const result = await ctx.stub.getStateByPartialCompositeKey(objectType, JSON.parse(attributes));
        return drain(result, (kv) => ctx.stub.splitCompositeKey(kv.key).attributes);
    }

    async PartialPage(ctx, objectType, attributes, pageSize, bookmark) {
        return page(await ctx.stub.getStateByPartialCompositeKeyWithPagination(
            objectType, JSON.parse(attributes), Number(pageSize), bookmark));
    }

    async Query(ctx, query) {
        return drain(await ctx.stub.getQueryResult(query), entry);
    }

    async QueryPage(ctx, query, pageSize, bookmark) {
        return page(await ctx.stub.getQueryResultWithPagination(query, Number(pageSize), bookmark));
    }

    async History(ctx, key) {
        return drain(await ctx.stub.getHistoryForKey(key), (change) => ({
            tx_id: change.txId,
            value: utf8(change.value),
            is_delete: change.isDelete,
            at: isoformat(change.timestamp.seconds, change.timestamp.nanos),
        }));
    }

    async PutPrivate(ctx, collection, key) {
        await ctx.stub.putPrivateData(collection, key, ctx.stub.getTransient().get('value'));
    }

    async GetPrivate(ctx, collection, key) {
        return utf8(await ctx.stub.getPrivateData(collection, key));
    }

    async PrivateHash(ctx, collection, key) {
        return Buffer.from(await ctx.stub.getPrivateDataHash(collection, key)).toString('hex');
    }

    async DeletePrivate(ctx, collection, key) {
        await ctx.stub.deletePrivateData(collection, key);
    }

    async PurgePrivate(ctx, collection, key) {
        await ctx.stub.purgePrivateData(collection, key);
    }

    async PrivateRange(ctx, collection, start, end) {
        return drain(await ctx.stub.getPrivateDataByRange(collection, start, end), entry);
    }

    async SetEndorsement(ctx, key, policy) {
        await ctx.stub.setStateValidationParameter(key, ctx.stub.getBufferArgs()[2]);
    }

    async GetEndorsement(ctx, key) {
        return utf8(await ctx.stub.getStateValidationParameter(key));
    }

    async Proposal(ctx) {
        const stub = ctx.stub;
        const timestamp = stub.getTxTimestamp();
        return {
            tx_id: stub.getTxID(),
            channel_id: stub.getChannelID(),
            timestamp: isoformat(timestamp.seconds, timestamp.nanos),
            binding: stub.getBinding(),
            creator: Buffer.from(stub.getSignedProposal().proposal.header.signatureHeader.creator_u8).toString('hex'),
            transient: [...stub.getTransient().keys()].sort(),
            args: stub.getStringArgs(),
        };
    }

    async Identity(ctx, attribute) {
        const identity = ctx.clientIdentity;
        return {msp_id: identity.getMSPID(), id: identity.getID(), attribute: identity.getAttributeValue(attribute)};
    }

    async Echo(ctx, data) {
        return data;
    }

    async Emit(ctx, name, thenFail) {
        await ctx.stub.putState('emitted', Buffer.from(name));
        ctx.stub.setEvent(name, Buffer.from('payload'));
        if (thenFail === 'true') {
            throw new Error('refused after setting the event');
        }
    }

    async Fail(ctx, kind) {
        if (kind === 'refusal') {
            throw new Error('refused:\n  first line\n  second line');
        }
        const nothing = null;
        return nothing.property; // an unexpected TypeError
    }

    /** The Python probe waits for the test's GATE; here a slow transaction simply takes a second. */
    async Wait(ctx) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        return 'released';
    }
}

module.exports.ProbeContract = ProbeContract;
module.exports.contracts = [ProbeContract];
