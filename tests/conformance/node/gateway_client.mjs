// Drives the official Fabric Gateway Node client (@hyperledger/fabric-gateway)
// for tests/conformance/test_official_gateway_client.py.
//
// Usage: node gateway_client.mjs '<config JSON>'   (or the JSON in $GATEWAY_CLIENT_CONFIG)
//
// Config:
//   endpoint            "127.0.0.1:7051"
//   tlsRootCertPath     PEM of the CA that signed the server's certificate; absent: no TLS
//   serverNameOverride  host name to check the server's certificate against
//   mspId, certPath, keyPath   the client identity (PEM certificate, PEM private key)
//   signWithKeyPath     optional: sign with this key instead (to prove bad signatures fail)
//   offline             true: connect without a signer; only the offline* calls can then sign
//   timeoutMs           deadline of every Gateway call (default 10000)
//   channel, chaincode, contract (optional contract name)
//   calls               [{op, ...}], run in order; see CALLS below
//
// Byte strings in the JSON (arguments, transient values, proposal bytes) are either
// plain strings (UTF-8) or {"base64": "..."}; byte strings in the output are base64.
// Prints one JSON line: {"results": [{"op", "ok": true, ...} | {"op", "ok": false, "error": {...}}]}.
// A failed call is a result, not a failed script: the exit code is non-zero only when
// the script itself cannot run.

import * as grpc from '@grpc/grpc-js';
import { checkpointers, connect, signers } from '@hyperledger/fabric-gateway';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

const config = JSON.parse(process.argv[2] ?? process.env.GATEWAY_CLIENT_CONFIG ?? '');

function toBytes(value) {
    if (typeof value === 'string') return Buffer.from(value);
    if (value && typeof value.base64 === 'string') return Buffer.from(value.base64, 'base64');
    throw new Error(`not a byte string: ${JSON.stringify(value)}`);
}

const b64 = (bytes) => Buffer.from(bytes).toString('base64');

function proposalOptions(call) {
    const options = {};
    if (call.args) options.arguments = call.args.map(toBytes);
    if (call.transient) {
        options.transientData = Object.fromEntries(
            Object.entries(call.transient).map(([key, value]) => [key, toBytes(value)]),
        );
    }
    if (call.endorsingOrganizations) options.endorsingOrganizations = call.endorsingOrganizations;
    return options;
}

function statusJson(status) {
    return {
        transactionId: status.transactionId,
        code: status.code,
        successful: status.successful,
        blockNumber: Number(status.blockNumber),
    };
}

function errorJson(err) {
    return {
        name: err.name,
        message: err.message,
        code: err.code, // gRPC status code; for a CommitError, the validation code
        details: err.details,
        transactionId: err.transactionId, // Endorse/Submit/CommitStatus/CommitError
    };
}

const key = createPrivateKey(readFileSync(config.signWithKeyPath ?? config.keyPath));
const signer = signers.newPrivateKeySigner(key);

const tlsRootCert = config.tlsRootCertPath ? readFileSync(config.tlsRootCertPath) : undefined;
const client = new grpc.Client(
    config.endpoint,
    tlsRootCert ? grpc.credentials.createSsl(tlsRootCert) : grpc.credentials.createInsecure(),
    config.serverNameOverride ? { 'grpc.ssl_target_name_override': config.serverNameOverride } : {},
);
const deadline = () => ({ deadline: Date.now() + (config.timeoutMs ?? 10000) });
const gateway = connect({
    client,
    identity: { mspId: config.mspId, credentials: readFileSync(config.certPath) },
    signer: config.offline ? undefined : signer,
    evaluateOptions: deadline,
    endorseOptions: deadline,
    submitOptions: deadline,
    commitStatusOptions: deadline,
});
const network = gateway.getNetwork(config.channel);
const contract = network.getContract(config.chaincode, config.contract);

// CALLS: each takes its call's JSON and returns the JSON of its result.
const CALLS = {
    async evaluateTransaction(call) {
        return { result: b64(await contract.evaluateTransaction(call.name, ...(call.args ?? []).map(toBytes))) };
    },
    async evaluate(call) {
        return { result: b64(await contract.evaluate(call.name, proposalOptions(call))) };
    },
    async submitTransaction(call) {
        return { result: b64(await contract.submitTransaction(call.name, ...(call.args ?? []).map(toBytes))) };
    },
    async submit(call) {
        return { result: b64(await contract.submit(call.name, proposalOptions(call))) };
    },
    async submitAsync(call) {
        const submitted = await contract.submitAsync(call.name, proposalOptions(call));
        return {
            result: b64(submitted.getResult()),
            transactionId: submitted.getTransactionId(),
            status: statusJson(await submitted.getStatus()),
        };
    },
    // Reads `count` events, then closes the stream. startBlock / checkpoint {blockNumber, transactionId}.
    async chaincodeEvents(call) {
        const options = {};
        if (call.startBlock !== undefined) options.startBlock = BigInt(call.startBlock);
        if (call.checkpoint) {
            const checkpointer = checkpointers.inMemory();
            await checkpointer.checkpointTransaction(
                BigInt(call.checkpoint.blockNumber),
                call.checkpoint.transactionId,
            );
            options.checkpoint = checkpointer;
        }
        const events = await network.getChaincodeEvents(call.chaincode ?? config.chaincode, options);
        const received = [];
        try {
            for await (const event of events) {
                received.push({
                    blockNumber: Number(event.blockNumber),
                    transactionId: event.transactionId,
                    chaincodeName: event.chaincodeName,
                    eventName: event.eventName,
                    payload: b64(event.payload),
                });
                if (received.length >= call.count) break;
            }
        } finally {
            events.close();
        }
        return { events: received };
    },
    // An unsigned proposal, not sent: its bytes and digest, for another client to sign and send.
    async newProposal(call) {
        const proposal = contract.newProposal(call.name, proposalOptions(call));
        return {
            transactionId: proposal.getTransactionId(),
            bytes: b64(proposal.getBytes()),
            digest: b64(proposal.getDigest()),
        };
    },
    // Signs proposal bytes made elsewhere (our Python client) with the offline API and evaluates them.
    async evaluateProposalBytes(call) {
        const unsigned = gateway.newProposal(toBytes(call.bytes));
        const digest = unsigned.getDigest();
        const proposal = gateway.newSignedProposal(toBytes(call.bytes), await signer(digest));
        return {
            transactionId: proposal.getTransactionId(),
            digest: b64(digest),
            result: b64(await proposal.evaluate()),
        };
    },
    // The whole submit flow through the offline-signing API: each step's digest signed apart.
    async offlineSubmit(call) {
        const unsignedProposal = contract.newProposal(call.name, proposalOptions(call));
        const proposal = gateway.newSignedProposal(
            unsignedProposal.getBytes(),
            await signer(unsignedProposal.getDigest()),
        );
        const unsignedTransaction = await proposal.endorse();
        const transaction = gateway.newSignedTransaction(
            unsignedTransaction.getBytes(),
            await signer(unsignedTransaction.getDigest()),
        );
        const unsignedCommit = await transaction.submit();
        const commit = gateway.newSignedCommit(
            unsignedCommit.getBytes(),
            await signer(unsignedCommit.getDigest()),
        );
        return {
            transactionId: proposal.getTransactionId(),
            result: b64(transaction.getResult()),
            status: statusJson(await commit.getStatus()),
        };
    },
};

const results = [];
try {
    for (const call of config.calls) {
        const run = CALLS[call.op];
        if (!run) throw new Error(`unknown op: ${call.op}`);
        try {
            results.push({ op: call.op, ok: true, ...(await run(call)) });
        } catch (err) {
            results.push({ op: call.op, ok: false, error: errorJson(err) });
        }
    }
} finally {
    gateway.close();
    client.close();
}
process.stdout.write(JSON.stringify({ results }) + '\n');
